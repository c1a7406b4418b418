"""Result buttons as persistent `DynamicItem`s: they carry the job id in their
custom_id, so a click still works after the bot restarts.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, Self, cast

import discord

from bot.commands import button_data, region
from bot.commands.base import Button


class _HandlesButtons(Protocol):
    on_result_button: Callable[[discord.Interaction[Any], str], Awaitable[None]]
    on_region_button: Callable[[discord.Interaction[Any], str], Awaitable[None]]


# Discord shows at most 5 rows of 5 buttons on a message.
MAX_ROWS = 5
# The attachments on Discord are the PNGs themselves; a "PNG" button adds nothing.
_HIDDEN_ACTIONS = {"png"}


class PersistentButton:
    """A button rebuilt from its custom_id after a restart. Mixed in before
    `discord.ui.DynamicItem`, whose subclasses each name the template of their ids."""

    def __init__(self, data: str, label: str = "") -> None:
        button = discord.ui.Button(label=label or None, custom_id=data, style=self.style(data))
        super().__init__(button)  # DynamicItem's, next in the MRO

    @staticmethod
    def style(data: str) -> discord.ButtonStyle:
        return _style(data)

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        label = item.label if isinstance(item, discord.ui.Button) else None
        return cls(match.string, label or "")


class ResultButton(
    PersistentButton,
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=re.compile(button_data.PATTERN),
):
    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = cast(_HandlesButtons, interaction.client)
        await client.on_result_button(interaction, self.custom_id)


class RegionButton(
    PersistentButton,
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=re.compile(region.PATTERN),
):
    """A press on a 🖌 Region grid: the selection is in the custom_id."""

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = cast(_HandlesButtons, interaction.client)
        await client.on_region_button(interaction, self.custom_id)


def result_view(rows: list[list[Button]]) -> discord.ui.View:
    """The buttons `render.result_buttons` chose, laid out row by row."""
    view = discord.ui.View(timeout=None)
    shown = [[b for b in row if _action(b.data) not in _HIDDEN_ACTIONS] for row in rows]
    for row_index, row in enumerate([row for row in shown if row][:MAX_ROWS]):
        for button in row:
            kind = RegionButton if region.is_region_data(button.data) else ResultButton
            item = kind(button.data, button.label)
            item.row = row_index
            view.add_item(item)
    return view


def _action(data: str) -> str | None:
    decoded = button_data.decode(data)
    return decoded.action if decoded is not None else None


def _style(data: str) -> discord.ButtonStyle:
    return (
        discord.ButtonStyle.danger if _action(data) == "delete" else discord.ButtonStyle.secondary
    )
