"""Where a Discord command's answer goes: the interaction's deferred response, or a
message only the caller sees."""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass
from typing import Any

import discord

from bot.adapters.discord.panel import panel_view
from bot.adapters.discord.views import result_view
from bot.commands.base import Reply, SendFile

log = logging.getLogger("atelier.discord")

# Discord refuses message content longer than this.
MAX_CONTENT = 2000
# interaction.extras key: the deferred response is ephemeral (only the user sees it).
_PRIVATE = "atelier_private"


@dataclass(frozen=True)
class InteractionSurface:
    interaction: discord.Interaction[Any]
    private: bool  # the deferral was ephemeral

    def __post_init__(self) -> None:
        self.interaction.extras[_PRIVATE] = self.private

    async def reply(self, reply: Reply) -> None:
        if reply.error or (reply.private and not self.private):
            await answer_privately(self.interaction, reply.text)
            return
        if reply.menus:
            view = panel_view(reply)
        else:
            view = result_view(reply.buttons) if reply.buttons else discord.utils.MISSING
        await self.interaction.edit_original_response(content=fit(reply.text), view=view)

    async def send_file(self, file: SendFile) -> None:
        data = await asyncio.to_thread(file.path.read_bytes)
        upload = discord.File(io.BytesIO(data), filename=file.filename)
        await self.interaction.edit_original_response(content=None, attachments=[upload])

    async def delete_result(self, job_id: str) -> None:
        """The clicked result message and the click's own response."""
        if self.interaction.message is not None:
            await self.interaction.message.delete()
        await self.interaction.delete_original_response()


async def answer_privately(interaction: discord.Interaction[Any], text: str) -> None:
    """One short message only the user sees, whatever the deferral was."""
    text = fit(text)
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
        elif interaction.extras.get(_PRIVATE):
            await interaction.edit_original_response(content=text)
        else:
            # The first followup after a public deferral would replace the public
            # "thinking" message (and stay public): remove that message first.
            await interaction.delete_original_response()
            await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException as exc:
        log.warning("Discord: could not answer interaction %s: %s", interaction.id, exc)


def fit(text: str) -> str:
    return text if len(text) <= MAX_CONTENT else text[: MAX_CONTENT - 1] + "…"
