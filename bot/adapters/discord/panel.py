"""A reply's menus as Discord selects, and its buttons, for panels like /settings.

Persistent `DynamicItem`s: the data is in the custom ids (a select's choices carry it
as their values), so a panel keeps working after a restart. A press edits the panel
in place (`DiscordAdapter.on_panel_click`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

import discord

from bot.adapters.discord.views import PersistentButton
from bot.commands import settings
from bot.commands.base import Reply

# Discord: at most 5 rows on a message, a select fills one, 25 choices in a select.
MAX_ROWS = 5
MAX_CHOICES = 25
_SELECT_PREFIX = "setmenu:"


class _HandlesPanels(Protocol):
    on_panel_click: Callable[[discord.Interaction[Any], str], Awaitable[None]]


class PanelButton(
    PersistentButton,
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=re.compile(settings.PATTERN),
):
    @staticmethod
    def style(data: str) -> discord.ButtonStyle:
        return discord.ButtonStyle.secondary

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = cast(_HandlesPanels, interaction.client)
        await client.on_panel_click(interaction, self.custom_id)


class PanelSelect(
    discord.ui.DynamicItem[discord.ui.Select[Any]],
    template=re.compile(rf"{_SELECT_PREFIX}(?P<name>\w+)"),
):
    """One menu; each choice's value is the data that picks it."""

    def __init__(self, select: discord.ui.Select[Any]) -> None:
        super().__init__(select)

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> PanelSelect:
        assert isinstance(item, discord.ui.Select)
        select: discord.ui.Select[Any] = discord.ui.Select(
            custom_id=match.string, placeholder=item.placeholder, options=item.options
        )
        return cls(select)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        values = self.item.values
        if values:
            client = cast(_HandlesPanels, interaction.client)
            await client.on_panel_click(interaction, values[0])


PANEL_ITEMS = (PanelButton, PanelSelect)


def panel_view(reply: Reply) -> discord.ui.View:
    """A select per menu, then the buttons row by row, within Discord's five rows."""
    view = discord.ui.View(timeout=None)
    row = 0
    for menu in reply.menus[:MAX_ROWS]:
        options = [
            discord.SelectOption(
                label=option.label[:100], value=option.data, default=i == menu.chosen
            )
            for i, option in enumerate(menu.options[:MAX_CHOICES])
        ]
        name = re.sub(r"\W", "", menu.open.rsplit(":", 1)[-1]) or str(row)
        select = PanelSelect(
            discord.ui.Select(
                custom_id=f"{_SELECT_PREFIX}{name}", placeholder=menu.title, options=options
            )
        )
        select.row = row
        view.add_item(select)
        row += 1
    for buttons in reply.buttons[: MAX_ROWS - row]:
        for button in buttons:
            item = PanelButton(button.data, button.label)
            item.row = row
            view.add_item(item)
        row += 1
    return view
