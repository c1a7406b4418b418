"""Progress and results of Telegram jobs: one status message, a chat action, the picture.

The scheduler calls `on_event` for every event of every Telegram job, including jobs
resumed after a restart; everything needed to find the chat is in `job.origin`
(`chat_id`, `reply_to`, `status_message_id`, later `result_message_ids`). Work for one
job runs in order under that job's lock, in tasks of its own, so a slow or
flood-limited Telegram never holds up the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram import Bot, InputMediaPhoto
from telegram.constants import ChatAction
from telegram.error import BadRequest, TelegramError

from bot.adapters.telegram.media import fit, keyboard, replying_to
from bot.commands import render
from bot.commands.delivery import StatusLine
from bot.jobs.models import Cancelled, Failed, Finished, Job, JobEvent, ResultImage

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger("atelier.telegram")

_FORGET_AFTER_S = 300.0
NOT_DELIVERED = "⚠️ The picture is ready but could not be sent here. Please try again."


@dataclass
class _Watch:
    """What the adapter knows about one job it is showing in a chat."""

    chat_id: int
    reply_to: int | None
    status: StatusLine  # its lock orders all work for the job; done once it is over
    status_message_id: int | None = None
    chat_action: asyncio.Task[None] | None = None


class JobDelivery:
    def __init__(
        self,
        bot: Bot,
        services: Services,
        *,
        status_interval: float = 3.0,
        action_interval: float = 4.5,
    ) -> None:
        self.bot = bot
        self.services = services
        self.status_interval = status_interval
        self.action_interval = action_interval
        self._watches: dict[str, _Watch] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # ---- entry points -----------------------------------------------------------------

    async def on_event(self, job: Job, event: JobEvent) -> None:
        """The scheduler's listener: returns at once, the work happens in a task."""
        if self._closed or "chat_id" not in job.origin:
            return
        self._spawn(self._handle(job, event))

    async def accepted(self, job: Job, text: str, chat_id: int, reply_to: int | None) -> None:
        """A command queued `job`: show its status message unless it already has one."""
        watch = self._watch(job.id, {**job.origin, "chat_id": chat_id, "reply_to": reply_to})
        async with watch.status.lock:
            if watch.status.done or watch.status_message_id is not None:
                return
            await self._show_status(job, watch, text)
            self._start_chat_action(watch)

    async def close(self, timeout: float = 5.0) -> None:
        """Stop showing progress; give messages already on their way `timeout` seconds."""
        self._closed = True
        for watch in self._watches.values():
            _cancel(watch.chat_action)
            watch.status.finish()
        if self._tasks:
            _, late = await asyncio.wait(list(self._tasks), timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    # ---- per-event work ---------------------------------------------------------------

    async def _handle(self, job: Job, event: JobEvent) -> None:
        watch = self._watch(job.id, job.origin)
        async with watch.status.lock:
            if watch.status.done:
                return
            if isinstance(event, Finished):
                self._finish(job.id, watch)
                try:
                    await self._send_result(job, watch, event.images)
                except (OSError, TelegramError):
                    log.exception("the result of job %s could not be sent", job.id)
                    await self._replace_status(watch, NOT_DELIVERED)
            elif isinstance(event, (Failed, Cancelled)):
                self._finish(job.id, watch)
                await self._replace_status(watch, render.status_text(event))
            else:
                await self._show_status(job, watch, render.status_text(event))
                self._start_chat_action(watch)

    def _finish(self, job_id: str, watch: _Watch) -> None:
        watch.status.finish()
        _cancel(watch.chat_action)
        # Kept a little longer, so a late `accepted` for a very fast job knows it is done.
        asyncio.get_running_loop().call_later(_FORGET_AFTER_S, self._watches.pop, job_id, None)

    async def _show_status(self, job: Job, watch: _Watch, text: str) -> None:
        """Send the status message, or edit it, at most once every `status_interval`."""
        await watch.status.show(fit(text), functools.partial(self._put_status, job.id, watch))

    async def _put_status(self, job_id: str, watch: _Watch, text: str) -> None:
        if watch.status_message_id is None:
            message = await self.bot.send_message(
                watch.chat_id, text, reply_parameters=replying_to(watch.reply_to)
            )
            watch.status_message_id = message.message_id
            await self._save_origin(job_id, watch)
        else:
            await self._edit_status(watch, text)

    async def _edit_status(self, watch: _Watch, text: str) -> None:
        assert watch.status_message_id is not None
        try:
            await self.bot.edit_message_text(
                text, chat_id=watch.chat_id, message_id=watch.status_message_id
            )
        except BadRequest as exc:
            # The user may have deleted the status message; progress is not worth a fuss.
            log.info("status message of chat %s not edited: %s", watch.chat_id, exc.message)

    async def _replace_status(self, watch: _Watch, text: str) -> None:
        """A failed or cancelled job: the status message becomes the final word."""
        if watch.status_message_id is None:
            await self.bot.send_message(
                watch.chat_id, fit(text), reply_parameters=replying_to(watch.reply_to)
            )
        else:
            await self._edit_status(watch, fit(text))

    async def _send_result(self, job: Job, watch: _Watch, images: list[ResultImage]) -> None:
        data_dir = self.services.config.data_dir
        pictures = [await asyncio.to_thread((data_dir / image.path).read_bytes) for image in images]
        caption = render.result_caption(job)  # kept under Telegram's 1,024 by render
        markup = keyboard(render.result_buttons(job))
        reply = replying_to(watch.reply_to)
        if len(pictures) == 1:
            message = await self.bot.send_photo(
                watch.chat_id,
                pictures[0],
                caption=caption,
                reply_markup=markup,
                has_spoiler=images[0].flagged,
                reply_parameters=reply,
            )
            result_ids = [message.message_id]
        else:
            album = await self.bot.send_media_group(
                watch.chat_id,
                [
                    InputMediaPhoto(picture, has_spoiler=image.flagged)
                    for picture, image in zip(pictures, images, strict=True)
                ],
                reply_parameters=reply,
            )
            buttons = await self.bot.send_message(watch.chat_id, caption, reply_markup=markup)
            result_ids = [m.message_id for m in album] + [buttons.message_id]
        if watch.status_message_id is not None:
            with contextlib.suppress(BadRequest):
                await self.bot.delete_message(watch.chat_id, watch.status_message_id)
            watch.status_message_id = None
        await self._save_origin(job.id, watch, result_message_ids=result_ids)

    # ---- helpers ----------------------------------------------------------------------

    def _watch(self, job_id: str, origin: dict[str, Any]) -> _Watch:
        watch = self._watches.get(job_id)
        if watch is None:
            watch = _Watch(
                chat_id=int(origin["chat_id"]),
                reply_to=origin.get("reply_to"),
                status=StatusLine(self.status_interval),
                status_message_id=origin.get("status_message_id"),
            )
            self._watches[job_id] = watch
        return watch

    async def _save_origin(self, job_id: str, watch: _Watch, **extra: Any) -> None:
        """Kept in the job's row so a restarted bot still finds the chat and messages."""
        origin = {
            "chat_id": watch.chat_id,
            "reply_to": watch.reply_to,
            "status_message_id": watch.status_message_id,
            **extra,
        }
        await self.services.scheduler.set_origin(job_id, origin)

    def _start_chat_action(self, watch: _Watch) -> None:
        if watch.chat_action is None or watch.chat_action.done():
            watch.chat_action = self._spawn(self._keep_uploading(watch))

    async def _keep_uploading(self, watch: _Watch) -> None:
        # Telegram shows a chat action for 5 s, so it is repeated until the job ends.
        while not watch.status.done:
            try:
                await self.bot.send_chat_action(watch.chat_id, ChatAction.UPLOAD_PHOTO)
            except TelegramError as exc:
                log.info("chat action for chat %s failed: %s", watch.chat_id, exc)
            await asyncio.sleep(self.action_interval)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._logged(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    async def _logged(work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delivering a Telegram job update failed")


def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
