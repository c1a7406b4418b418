"""Remix on Discord: a modal prefilled with the prompt, opened instead of running a
press when the press asks for a new prompt (`bot.commands.remix.ask`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.commands.remix import RemixAsk

# Discord: a modal's title is at most 45 characters, a text input's value 4,000.
MAX_VALUE = 4000
TITLE = "🔀 Remix: edit the prompt"
OnSubmit = Callable[[discord.Interaction[Any], str, str], Awaitable[None]]


class RemixModal(discord.ui.Modal):
    def __init__(self, ask: RemixAsk, on_submit: OnSubmit) -> None:
        # The press's data in the modal's id: what the submit runs.
        super().__init__(title=TITLE, timeout=None, custom_id=f"remix:{ask.data}")
        self.data = ask.data
        self.prompt: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="Prompt",
            style=discord.TextStyle.paragraph,
            default=ask.prompt[:MAX_VALUE] or None,
            max_length=MAX_VALUE,
            required=True,
        )
        self.add_item(self.prompt)
        self._on_submit = on_submit

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:
        await self._on_submit(interaction, self.data, self.prompt.value)
