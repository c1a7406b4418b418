"""Remix on Discord: a modal prefilled with the prompt, opened instead of running a
press when the press asks for a new prompt (`bot.commands.remix.ask`).

The modal's custom_id carries the press (`remix:DATA`), and its submit is read from
the interaction itself (`submitted`), not from discord.py's memory of open modals: a
modal filled in across a restart still paints.
"""

from __future__ import annotations

from typing import Any

import discord

from bot.commands.remix import RemixAsk

# Discord: a modal's title is at most 45 characters, a text input's value 4,000.
MAX_VALUE = 4000
TITLE = "🔀 Remix: edit the prompt"
PREFIX = "remix:"
_INPUT_ID = "prompt"


def remix_modal(ask: RemixAsk) -> discord.ui.Modal:
    modal = discord.ui.Modal(title=TITLE, timeout=None, custom_id=f"{PREFIX}{ask.data}")
    modal.add_item(
        discord.ui.TextInput(
            label="Prompt",
            custom_id=_INPUT_ID,
            style=discord.TextStyle.paragraph,
            default=ask.prompt[:MAX_VALUE] or None,
            max_length=MAX_VALUE,
            required=True,
        )
    )
    # Finished before it is sent, so discord.py does not keep it: every submit,
    # before or after a restart, arrives through `submitted`.
    modal.stop()
    return modal


def submitted(interaction: discord.Interaction[Any]) -> tuple[str, str] | None:
    """(press data, prompt) of a remix modal's submit; None for anything else."""
    if interaction.type is not discord.InteractionType.modal_submit or not interaction.data:
        return None
    custom_id = str(interaction.data.get("custom_id", ""))
    if not custom_id.startswith(PREFIX):
        return None
    for component in interaction.data.get("components", []):
        inner = component.get("components") or [component.get("component") or {}]
        for item in inner:
            if item.get("custom_id") == _INPUT_ID:
                return custom_id.removeprefix(PREFIX), str(item.get("value") or "")
    return None
