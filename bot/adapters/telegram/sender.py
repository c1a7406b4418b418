"""Telegram's side of delivery: one status message per job, a chat action while it
paints, and the result as a photo (or an album and a keyboard message).

Everything needed to find the chat is in `job.origin` (`chat_id`, `reply_to`, then
`status_message_id`, `status_photo`, `album_ids`, `result_message_ids`), saved as it
changes, so a restarted bot carries on. With live previews the status becomes a photo
(a text message cannot gain media, so it is sent again as one) whose picture is then
swapped with editMessageMedia and whose text is its caption. Sends are not idempotent
on Telegram (`resend_is_safe` is False): what was sent is recorded before the next
step, and every error is mapped to what it proves (`retry.delivery_error`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot, InputMediaPhoto
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.adapters.telegram.media import fit, fit_photo, keyboard, replying_to
from bot.adapters.telegram.retry import FINAL, delivery_error
from bot.commands.base import Button
from bot.commands.generation import DM_RESULTS
from bot.delivery.sender import ResultLetter
from bot.records import Job, JobStatus

log = logging.getLogger("atelier.telegram")

SaveOrigin = Callable[[str, dict[str, Any]], Awaitable[None]]
# Uploads of a few MB on a slow link: wait long enough that a time-out means trouble,
# since a timed-out send is never repeated.
UPLOAD_TIMEOUT_S = 120.0
SENT_TO_PRIVATE_CHAT = "📬 Sent to your private chat with me (your /settings)."
# Live previews: one picture per 3 s per chat keeps a group under Telegram's 20
# messages (edits included) a minute.
PREVIEW_INTERVAL_S = 3.0
CAPTION_LIMIT = 1024


class TelegramSender:
    resend_is_safe = False

    def __init__(
        self,
        bot: Bot,
        save_origin: SaveOrigin,
        *,
        action_interval: float = 4.5,
        upload_timeout: float = UPLOAD_TIMEOUT_S,
        preview_interval: float = PREVIEW_INTERVAL_S,
    ) -> None:
        self._bot = bot
        self.preview_interval = preview_interval
        self._save_origin = save_origin
        self._action_interval = action_interval
        self._upload_timeout = upload_timeout
        # What was learnt since the job's snapshot was taken (the origin in the store
        # has it too): job id -> origin.
        self._origins: dict[str, dict[str, Any]] = {}
        self._actions: dict[str, asyncio.Task[None]] = {}

    # ---- the Sender protocol ------------------------------------------------------------

    async def show_status(self, job: Job, text: str) -> None:
        origin = self._origin(job)
        message_id = origin.get("status_message_id")
        if message_id is None:
            message = await self._bot.send_message(
                origin["chat_id"], fit(text), reply_parameters=replying_to(origin.get("reply_to"))
            )
            await self._remember(job.id, status_message_id=message.message_id)
        else:
            try:
                if origin.get("status_photo"):
                    await self._bot.edit_message_caption(
                        chat_id=origin["chat_id"],
                        message_id=message_id,
                        caption=fit(text, CAPTION_LIMIT),
                    )
                else:
                    await self._bot.edit_message_text(
                        fit(text), chat_id=origin["chat_id"], message_id=message_id
                    )
            except BadRequest as exc:
                # The user may have deleted the status message; progress is not worth a fuss.
                log.info("status message of job %s not edited: %s", job.id, exc.message)
        if job.status is JobStatus.RUNNING:
            # "sending a photo…" in the chat header while it paints, not while it waits.
            self._keep_uploading(job.id, origin["chat_id"])

    async def show_preview(self, job: Job, text: str, picture: bytes) -> None:
        origin = self._origin(job)
        chat_id = origin["chat_id"]
        message_id = origin.get("status_message_id")
        caption = fit(text, CAPTION_LIMIT)
        if message_id is not None and origin.get("status_photo"):
            try:
                await self._bot.edit_message_media(
                    InputMediaPhoto(picture, caption=caption),
                    chat_id=chat_id,
                    message_id=message_id,
                )
            except BadRequest as exc:
                log.info("preview of job %s not shown: %s", job.id, exc.message)
            return
        message = await self._bot.send_photo(
            chat_id, picture, caption=caption, reply_parameters=replying_to(origin.get("reply_to"))
        )
        await self._remember(job.id, status_message_id=message.message_id, status_photo=True)
        if message_id is not None:
            await self._delete(job.id, chat_id, message_id)

    def status_chat(self, job: Job) -> str:
        return str(self._origin(job)["chat_id"])

    async def send_result(self, letter: ResultLetter) -> None:
        job = letter.job
        self._stop_uploading(job.id)
        origin = self._origin(job)
        chat_id = self._result_chat(job, origin)
        try:
            try:
                result_ids = await self._send_pictures(letter, origin, chat_id)
            except (Forbidden, BadRequest) as exc:
                if chat_id == origin["chat_id"] or origin.get("album_ids") is not None:
                    raise
                # The user never started a private chat with the bot (or blocked it):
                # nothing went there, so the result goes where they asked for it.
                log.info("job %s: private chat refused (%s); sending in the chat", job.id, exc)
                chat_id = origin["chat_id"]
                await self._remember(job.id, result_chat_id=chat_id)
                result_ids = await self._send_pictures(letter, origin, chat_id)
        except TelegramError as exc:
            raise delivery_error(exc) from exc
        if chat_id == origin["chat_id"]:
            await self._drop_status(job.id, origin)
        else:
            await self._point_to_private_chat(job.id, origin)
        await self._remember(job.id, result_message_ids=result_ids, status_message_id=None)

    async def send_notice(self, job: Job, text: str, buttons: list[list[Button]]) -> None:
        """The status message becomes the final word (an edit: safe to repeat)."""
        self._stop_uploading(job.id)
        origin = self._origin(job)
        message_id = origin.get("status_message_id")
        if message_id is not None and origin.get("status_photo"):
            # The preview goes (the picture was not finished, or not fit to show), and
            # the notice comes as a message of its own.
            await self._delete(job.id, origin["chat_id"], message_id)
            await self._remember(job.id, status_message_id=None)
            message_id = None
        try:
            if message_id is not None:
                try:
                    await self._bot.edit_message_text(
                        fit(text),
                        chat_id=origin["chat_id"],
                        message_id=message_id,
                        reply_markup=keyboard(buttons),
                        rate_limit_args=FINAL,
                    )
                    return
                except BadRequest as exc:
                    if "not modified" in exc.message:
                        return
                    log.info("status of job %s gone (%s); sending anew", job.id, exc.message)
            await self._bot.send_message(
                origin["chat_id"],
                fit(text),
                reply_markup=keyboard(buttons),
                reply_parameters=replying_to(origin.get("reply_to")),
                rate_limit_args=FINAL,
            )
        except TelegramError as exc:
            raise delivery_error(exc) from exc

    def close(self) -> None:
        for task in self._actions.values():
            task.cancel()

    # ---- steps --------------------------------------------------------------------------

    def _result_chat(self, job: Job, origin: dict[str, Any]) -> int:
        """The chat asked in, or the owner's private chat when their /settings say so."""
        if "result_chat_id" in origin:  # chosen by an earlier try: stay with it
            return int(origin["result_chat_id"])
        if origin.get(DM_RESULTS):
            return int(job.user_id)  # a user's private chat has their user id
        return int(origin["chat_id"])

    async def _send_pictures(
        self, letter: ResultLetter, origin: dict[str, Any], chat_id: int
    ) -> list[int]:
        job = letter.job
        markup = keyboard(letter.buttons)
        # A reply to the command only where the command is.
        reply_to = origin.get("reply_to") if chat_id == origin["chat_id"] else None
        if len(letter.pictures) > 1:
            return await self._send_album(job, letter, markup, chat_id, reply_to)
        message = await self._bot.send_photo(
            chat_id,
            await asyncio.to_thread(fit_photo, letter.pictures[0]),
            caption=letter.caption,  # kept under Telegram's 1,024 by render
            reply_markup=markup,
            has_spoiler=job.images[0].flagged,
            reply_parameters=replying_to(reply_to),
            read_timeout=self._upload_timeout,
            write_timeout=self._upload_timeout,
            rate_limit_args=FINAL,
        )
        return [message.message_id]

    async def _send_album(
        self, job: Job, letter: ResultLetter, markup: Any, chat_id: int, reply_to: int | None
    ) -> list[int]:
        """An album cannot carry buttons: the album, then a message with caption and
        buttons. The album is recorded first, so a retry sends only what is missing."""
        album_ids: list[int] | None = self._origin(job).get("album_ids")
        if album_ids is None:
            album = await self._bot.send_media_group(
                chat_id,
                [
                    InputMediaPhoto(
                        await asyncio.to_thread(fit_photo, picture), has_spoiler=image.flagged
                    )
                    for picture, image in zip(letter.pictures, job.images, strict=True)
                ],
                reply_parameters=replying_to(reply_to),
                read_timeout=self._upload_timeout,
                write_timeout=self._upload_timeout,
                rate_limit_args=FINAL,
            )
            album_ids = [message.message_id for message in album]
            # Where it went, too: a retry sends the buttons to the same chat.
            await self._remember(job.id, album_ids=album_ids, result_chat_id=chat_id)
        buttons = await self._bot.send_message(
            chat_id, letter.caption, reply_markup=markup, rate_limit_args=FINAL
        )
        return [*album_ids, buttons.message_id]

    async def _point_to_private_chat(self, job_id: str, origin: dict[str, Any]) -> None:
        """The status message in the chat asked in says where the result went."""
        message_id = origin.get("status_message_id")
        if message_id is None:
            return
        try:
            if origin.get("status_photo"):  # no preview left behind in the chat
                await self._bot.send_message(origin["chat_id"], SENT_TO_PRIVATE_CHAT)
                await self._delete(job_id, origin["chat_id"], message_id)
                return
            await self._bot.edit_message_text(
                SENT_TO_PRIVATE_CHAT, chat_id=origin["chat_id"], message_id=message_id
            )
        except TelegramError as exc:  # the result is out; the pointer is cosmetic
            log.info("status message of job %s not edited: %s", job_id, exc)

    async def _drop_status(self, job_id: str, origin: dict[str, Any]) -> None:
        """The result replaces the status (with its preview, if it had one)."""
        message_id = origin.get("status_message_id")
        if message_id is not None:
            await self._delete(job_id, origin["chat_id"], message_id)

    async def _delete(self, job_id: str, chat_id: int, message_id: int) -> None:
        try:
            await self._bot.delete_message(chat_id, message_id)
        except TelegramError as exc:  # a stale status is cosmetic
            log.info("status message of job %s not deleted: %s", job_id, exc)

    # ---- helpers ------------------------------------------------------------------------

    def _origin(self, job: Job) -> dict[str, Any]:
        return {**job.origin, **self._origins.get(job.id, {})}

    async def _remember(self, job_id: str, **changes: Any) -> None:
        known = self._origins.setdefault(job_id, {})
        known.update(changes)
        await self._save_origin(job_id, changes)

    def _keep_uploading(self, job_id: str, chat_id: int) -> None:
        task = self._actions.get(job_id)
        if task is None or task.done():
            self._actions[job_id] = asyncio.get_running_loop().create_task(self._uploading(chat_id))

    def _stop_uploading(self, job_id: str) -> None:
        task = self._actions.pop(job_id, None)
        if task is not None:
            task.cancel()

    async def _uploading(self, chat_id: int) -> None:
        # Telegram shows a chat action for 5 s, so it is repeated until the job ends.
        while True:
            try:
                await self._bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
            except TelegramError as exc:
                log.info("chat action for chat %s failed: %s", chat_id, exc)
            await asyncio.sleep(self._action_interval)
