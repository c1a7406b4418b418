"""Where a Telegram command's answer goes: the chat it came from, as a reply to the
message (or the clicked message) that asked."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from telegram import Bot
from telegram.error import BadRequest, Forbidden

from bot.adapters.telegram import panel
from bot.adapters.telegram.media import fit, replying_to
from bot.commands.base import Reply, SendFile
from bot.store import Store

log = logging.getLogger("atelier.telegram")

SENT_PRIVATELY = "📬 I've sent you the answer in a private message."
START_PRIVATE_CHAT = (
    "📬 That answer is for your eyes only: start a private chat with me "
    "(tap my name, then Start) and ask again there."
)


@dataclass(frozen=True)
class ChatSurface:
    bot: Bot
    store: Store
    chat_id: int
    reply_to: int | None
    user_id: int
    private_chat: bool  # a one-to-one chat with the user

    async def reply(self, reply: Reply) -> None:
        markup = panel.markup(reply)
        if reply.private and not self.private_chat:
            # Other people's prompts, say: not for the whole group to read.
            try:
                await self.bot.send_message(self.user_id, fit(reply.text), reply_markup=markup)
                pointer = SENT_PRIVATELY
            except Forbidden:  # the user never opened a chat with the bot
                pointer = START_PRIVATE_CHAT
            await self._send(pointer)
            return
        await self._send(reply.text, markup)

    async def send_file(self, file: SendFile) -> None:
        data = await asyncio.to_thread(file.path.read_bytes)
        await self.bot.send_document(
            self.chat_id,
            data,
            filename=file.filename,
            reply_parameters=replying_to(self.reply_to),
        )

    async def delete_result(self, job_id: str) -> None:
        """The result's messages, and the message whose button asked for it."""
        job = await self.store.get_job(job_id)
        message_ids = set(job.origin.get("result_message_ids", [])) if job else set()
        if self.reply_to is not None:
            message_ids.add(self.reply_to)
        for message_id in sorted(message_ids):
            try:
                await self.bot.delete_message(self.chat_id, message_id)
            except BadRequest as exc:
                log.info("result message %s not deleted: %s", message_id, exc.message)

    async def _send(self, text: str, markup: object = None) -> None:
        await self.bot.send_message(
            self.chat_id,
            fit(text),
            reply_markup=markup,  # type: ignore[arg-type]
            reply_parameters=replying_to(self.reply_to),
        )
