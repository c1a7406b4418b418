"""The courier: every job's status and final message, from the scheduler to the chat.

For each platform an adapter registers a `Sender`; the courier then
- shows each job's status line (queued, painting 12/20…), throttled per job, with
  each job's work in its own task so one slow upload never delays another job; a
  live preview of the picture rides on those edits, within a budget per chat too;
- sends each job's final message from the store's outbox: the pictures, or the
  failure or cancellation. An outbox entry is marked `sending` before a send and
  deleted once it arrived, so after a kill anything not delivered goes out on the
  next start. Retries follow what the sender can prove (see `sender.py`):
  - not sent (429, 5xx, refused connection): sent again after the platform's
    `retry_after` or a growing backoff, persisted, so a restart waits too;
  - maybe sent (a read time-out, or a kill mid-send on a platform whose sends are
    not idempotent): never repeated; the owner gets a short note with the PNG
    buttons instead, so nothing is lost and nothing arrives twice;
  - undeliverable: given up, logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from bot.commands import button_data, plot_render, render
from bot.commands.base import Button
from bot.delivery.sender import MaybeSent, NotSent, ResultLetter, Sender, Undeliverable
from bot.delivery.status_line import PreviewBudget, StatusLine
from bot.jobs.events import ENDINGS, Cancelled, EventHub, Failed, JobEvent, Progress
from bot.jobs.plots import PLOT_KEY, PlotTracker, is_cell
from bot.records import Delivery, Job, JobStatus, OutboxEntry
from bot.store import Store

log = logging.getLogger("atelier.delivery")

# Give up on a message the platform keeps refusing after this many tries (about an
# hour with the backoff below): by then the chat is gone or the user has moved on.
MAX_ATTEMPTS = 12
BACKOFF_S = (2.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0)
STATUS_INTERVAL_S = 3.0
# Status lines remembered, so a late status never lands over a delivered result.
_REMEMBERED_JOBS = 2000

PICTURES_GONE = "The picture was painted but its file is gone from the server; please try again."
UNCONFIRMED = (
    "✅ Your picture is ready, but the chat did not confirm it arrived. "
    "If you don't see it, get the original with the button below."
)


def backoff(attempts: int) -> float:
    return BACKOFF_S[min(attempts, len(BACKOFF_S)) - 1] if attempts > 0 else 0.0


class Courier:
    def __init__(
        self,
        store: Store,
        events: EventHub,
        data_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._events = events
        self._data_dir = data_dir
        self._clock = clock
        self._sleep = sleep
        self._senders: dict[str, tuple[Sender, float]] = {}
        self._lines: OrderedDict[str, StatusLine] = OrderedDict()
        # Chat (as the sender names it) -> its preview budget, shared by its jobs.
        self._budgets: OrderedDict[str, PreviewBudget] = OrderedDict()
        self._deliveries: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        # /plot cells report to their grid, which is delivered like any result.
        self.plots = PlotTracker(store, data_dir)

    def register(
        self, platform: str, sender: Sender, *, status_interval: float = STATUS_INTERVAL_S
    ) -> None:
        """Deliver `platform`'s jobs with `sender`, starting with what the outbox holds."""
        self._senders[platform] = (sender, status_interval)
        self._events.add_listener(platform, self._on_event)
        self._spawn(self._resume(platform))

    async def accepted(self, job: Job, text: str) -> None:
        """A command queued `job`: show its first status unless its events said more."""
        await self._show(job, text, first=True)

    async def close(self, timeout: float = 5.0) -> None:
        """Stop; what is still on its way gets `timeout` seconds, the rest stays in the
        outbox for the next start."""
        self._closed = True
        for line in self._lines.values():
            line.finish()
        tasks = list(self._tasks)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    # -- events --------------------------------------------------------------------

    async def _on_event(self, job: Job, event: JobEvent) -> None:
        """The scheduler's listener: returns at once, the work happens in tasks."""
        if self._closed:
            return
        if is_cell(job):
            self._spawn(self._show_plot(job, event))
            if isinstance(event, ENDINGS):
                self._deliver_soon(job.id)
            return
        if isinstance(event, ENDINGS):
            if job.platform in self._senders:
                # At once: a status still on its way must not land after the end.
                self._line(job.id, job.platform).finish()
            self._deliver_soon(job.id)
        else:
            preview = event.preview if isinstance(event, Progress) else None
            self._spawn(self._show(job, render.status_text(event), preview=preview))

    async def _show(
        self, job: Job, text: str, *, first: bool = False, preview: bytes | None = None
    ) -> None:
        found = self._senders.get(job.platform)
        if found is None:
            return
        sender, _ = found
        line = self._line(job.id, job.platform)
        budget = self._budget(sender, job) if preview is not None else None
        async with line.lock:
            if line.done or (first and line.started):
                return
            await line.show(text, functools.partial(_edit_status, sender, job), preview, budget)

    async def _show_plot(self, cell: Job, event: JobEvent) -> None:
        text = await self.plots.status_text(cell, event)
        grid_job = await self.plots.grid_job(cell) if text is not None else None
        if text is not None and grid_job is not None and grid_job.status is JobStatus.PLOTTING:
            await self._show(grid_job, text)

    # -- final messages --------------------------------------------------------------

    async def _resume(self, platform: str) -> None:
        # A plot whose last cell was settled just before a stop has its grid drawn now.
        for plot_id in await self.plots.waiting(platform):
            if await self.plots.complete(plot_id):
                self._deliver_soon(plot_id)
        for entry in await self._store.outbox():
            job = await self._store.get_job(entry.job_id)
            if job is not None and job.platform == platform:
                self._deliver_soon(job.id)

    def _deliver_soon(self, job_id: str) -> None:
        running = self._deliveries.get(job_id)
        if running is None or running.done():
            self._deliveries[job_id] = self._spawn(self._deliver(job_id))

    async def _deliver(self, job_id: str) -> None:
        while not self._closed:
            entry = await self._store.outbox_entry(job_id)
            job = await self._store.get_job(job_id) if entry is not None else None
            found = self._senders.get(job.platform) if job is not None else None
            if entry is None or job is None or found is None:
                return  # delivered already, or its platform is not connected now
            if is_cell(job):
                # Owed to the grid, not the chat: the grid goes out once it is complete.
                if await self.plots.cell_ended(job):
                    self._deliver_soon(str(job.origin[PLOT_KEY]))
                return
            sender, _ = found
            line = self._line(job.id, job.platform)
            async with line.lock:  # a status edit under way lands before the result
                line.finish()
            if entry.state is Delivery.SENDING and not sender.resend_is_safe:
                # The bot stopped mid-send: the platform may have it already.
                entry = dataclasses.replace(entry, state=Delivery.UNCERTAIN)
                await self._store.set_delivery(entry)
            if entry.state is Delivery.UNCERTAIN:
                await self._unconfirmed(sender, job, entry)
                return
            wait = entry.not_before - self._clock()
            if wait > 0:
                await self._sleep(wait)
            if not await self._attempt(sender, job, entry):
                continue
            return

    async def _attempt(self, sender: Sender, job: Job, entry: OutboxEntry) -> bool:
        """One try; True when the delivery is over (sent, or given up)."""
        try:
            send = await self._prepare(sender, job, entry)
        except OSError as exc:
            log.warning("job %s: its pictures cannot be read (%s)", job.id, exc)
            entry = dataclasses.replace(entry, kind="failed", text=PICTURES_GONE)
            send = functools.partial(sender.send_notice, job, self._notice(entry), [])
        entry = dataclasses.replace(entry, state=Delivery.SENDING, attempts=entry.attempts + 1)
        await self._store.set_delivery(entry)
        try:
            await send()
        except NotSent as exc:
            if entry.attempts >= MAX_ATTEMPTS:
                log.error("job %s: giving up after %d tries: %s", job.id, entry.attempts, exc)
                await self._store.delivered(job.id, error=f"not delivered: {exc}")
                return True
            wait = max(exc.retry_after or 0.0, backoff(entry.attempts))
            log.warning("job %s: not delivered (%s); trying again in %.0f s", job.id, exc, wait)
            await self._store.set_delivery(
                dataclasses.replace(entry, state=Delivery.PENDING, not_before=self._clock() + wait)
            )
            return False
        except Undeliverable as exc:
            log.warning("job %s: cannot be delivered: %s", job.id, exc)
            await self._store.delivered(job.id, error=f"not delivered: {exc}")
            return True
        except Exception as exc:
            # MaybeSent, or an error nobody mapped: it may have arrived either way.
            if not isinstance(exc, MaybeSent):
                log.exception("job %s: delivery failed unexpectedly", job.id)
            await self._store.set_delivery(dataclasses.replace(entry, state=Delivery.UNCERTAIN))
            return False
        await self._store.delivered(job.id)
        return True

    async def _prepare(
        self, sender: Sender, job: Job, entry: OutboxEntry
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        """The send to make, with everything read from disk before it starts."""
        if entry.kind != "result":
            return functools.partial(sender.send_notice, job, self._notice(entry), [])
        pictures = [
            await asyncio.to_thread((self._data_dir / image.path).read_bytes)
            for image in job.images
        ]
        plot = await self.plots.plot(job.id) if job.request.kind == "plot" else None
        if plot is not None:
            caption, buttons = plot_render.caption(job, plot), plot_render.buttons(job, plot)
        else:
            caption, buttons = render.result_caption(job), render.result_buttons(job)
        letter = ResultLetter(job, pictures, caption, buttons)
        return functools.partial(sender.send_result, letter)

    async def _unconfirmed(self, sender: Sender, job: Job, entry: OutboxEntry) -> None:
        """The message may have arrived: never repeat it; for pictures, say how to get
        them in case they did not."""
        if entry.kind == "result" and job.images:
            buttons = [
                Button(
                    f"📄 PNG {n + 1}" if len(job.images) > 1 else "📄 PNG",
                    button_data.encode("png", job.id, n),
                )
                for n in range(len(job.images))
            ]
            try:
                await sender.send_notice(job, UNCONFIRMED, [buttons])
            except Exception as exc:  # best effort: the note is not worth a second doubt
                log.warning("job %s: the unconfirmed-delivery note failed: %s", job.id, exc)
        log.warning("job %s: delivery not confirmed by %s; not sent again", job.id, job.platform)
        await self._store.delivered(job.id, error="delivery not confirmed")

    @staticmethod
    def _notice(entry: OutboxEntry) -> str:
        if entry.kind == "failed":
            return render.status_text(Failed(entry.text))
        return render.status_text(Cancelled(by_admin=entry.text == "by_admin"))

    # -- helpers ---------------------------------------------------------------------

    def _line(self, job_id: str, platform: str) -> StatusLine:
        line = self._lines.get(job_id)
        if line is None:
            _, interval = self._senders[platform]
            line = self._lines[job_id] = StatusLine(interval)
            while len(self._lines) > _REMEMBERED_JOBS:
                self._lines.popitem(last=False)
        return line

    def _budget(self, sender: Sender, job: Job) -> PreviewBudget:
        chat = f"{job.platform}:{sender.status_chat(job)}"
        budget = self._budgets.get(chat)
        if budget is None:
            budget = self._budgets[chat] = PreviewBudget(sender.preview_interval)
            while len(self._budgets) > _REMEMBERED_JOBS:
                self._budgets.popitem(last=False)
        return budget

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
            log.exception("delivering a job update failed")


async def _edit_status(sender: Sender, job: Job, text: str, preview: bytes | None) -> None:
    if preview is not None:
        await sender.show_preview(job, text, preview)
    else:
        await sender.show_status(job, text)
