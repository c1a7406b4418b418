"""Telegram's side of delivery: one status message per job, a chat action while it
paints, and the result as a photo (or an album and a keyboard message).

Everything needed to find the chat is in `job.origin` (`chat_id`, `reply_to`, then
`status_message_id`, `album_ids`, `result_message_ids`), saved as it changes, so a
restarted bot carries on. Sends are not idempotent on Telegram (`resend_is_safe` is
False): what was sent is recorded before the next step, and every error is mapped to
what it proves (`retry.delivery_error`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot, InputMediaPhoto
from telegram.constants import ChatAction
from telegram.error import BadRequest, TelegramError

from bot.adapters.telegram.media import fit, keyboard, replying_to
from bot.adapters.telegram.retry import FINAL, delivery_error
from bot.commands.base import Button
from bot.delivery.sender import ResultLetter
from bot.records import Job, JobStatus

log = logging.getLogger("atelier.telegram")

SaveOrigin = Callable[[str, dict[str, Any]], Awaitable[None]]
# Uploads of a few MB on a slow link: wait long enough that a time-out means trouble,
# since a timed-out send is never repeated.
UPLOAD_TIMEOUT_S = 120.0


class TelegramSender:
    resend_is_safe = False

    def __init__(
        self,
        bot: Bot,
        save_origin: SaveOrigin,
        *,
        action_interval: float = 4.5,
        upload_timeout: float = UPLOAD_TIMEOUT_S,
    ) -> None:
        self._bot = bot
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
                await self._bot.edit_message_text(
                    fit(text), chat_id=origin["chat_id"], message_id=message_id
                )
            except BadRequest as exc:
                # The user may have deleted the status message; progress is not worth a fuss.
                log.info("status message of job %s not edited: %s", job.id, exc.message)
        if job.status is JobStatus.RUNNING:
            # "sending a photo…" in the chat header while it paints, not while it waits.
            self._keep_uploading(job.id, origin["chat_id"])

    async def send_result(self, letter: ResultLetter) -> None:
        job = letter.job
        self._stop_uploading(job.id)
        origin = self._origin(job)
        chat_id = origin["chat_id"]
        markup = keyboard(letter.buttons)
        try:
            if len(letter.pictures) == 1:
                message = await self._bot.send_photo(
                    chat_id,
                    letter.pictures[0],
                    caption=letter.caption,  # kept under Telegram's 1,024 by render
                    reply_markup=markup,
                    has_spoiler=job.images[0].flagged,
                    reply_parameters=replying_to(origin.get("reply_to")),
                    read_timeout=self._upload_timeout,
                    write_timeout=self._upload_timeout,
                    rate_limit_args=FINAL,
                )
                result_ids = [message.message_id]
            else:
                result_ids = await self._send_album(job, origin, letter, markup)
        except TelegramError as exc:
            raise delivery_error(exc) from exc
        await self._drop_status(job.id, origin)
        await self._remember(job.id, result_message_ids=result_ids, status_message_id=None)

    async def send_notice(self, job: Job, text: str, buttons: list[list[Button]]) -> None:
        """The status message becomes the final word (an edit: safe to repeat)."""
        self._stop_uploading(job.id)
        origin = self._origin(job)
        message_id = origin.get("status_message_id")
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

    async def _send_album(
        self, job: Job, origin: dict[str, Any], letter: ResultLetter, markup: Any
    ) -> list[int]:
        """An album cannot carry buttons: the album, then a message with caption and
        buttons. The album is recorded first, so a retry sends only what is missing."""
        album_ids: list[int] | None = origin.get("album_ids")
        if album_ids is None:
            album = await self._bot.send_media_group(
                origin["chat_id"],
                [
                    InputMediaPhoto(picture, has_spoiler=image.flagged)
                    for picture, image in zip(letter.pictures, job.images, strict=True)
                ],
                reply_parameters=replying_to(origin.get("reply_to")),
                read_timeout=self._upload_timeout,
                write_timeout=self._upload_timeout,
                rate_limit_args=FINAL,
            )
            album_ids = [message.message_id for message in album]
            await self._remember(job.id, album_ids=album_ids)
        buttons = await self._bot.send_message(
            origin["chat_id"], letter.caption, reply_markup=markup, rate_limit_args=FINAL
        )
        return [*album_ids, buttons.message_id]

    async def _drop_status(self, job_id: str, origin: dict[str, Any]) -> None:
        message_id = origin.get("status_message_id")
        if message_id is not None:
            try:
                await self._bot.delete_message(origin["chat_id"], message_id)
            except TelegramError as exc:  # the result is out; a stale status is cosmetic
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
