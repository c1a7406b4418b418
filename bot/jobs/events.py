"""What happens to a job (`JobEvent`), and the hub that hands events to listeners.

Each listener has its own ordered line of events and its own task, so a slow
listener delays neither the scheduler nor the other platform, and a listener that
raises is logged and skipped. Listeners are expected to return quickly (the delivery
layer hands the slow work to a task per job). Events of a platform that has no
listener yet (the scheduler resumes jobs before the adapters connect) are held until
one is added.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.records import Job, ResultImage

log = logging.getLogger("atelier.events")


@dataclass(frozen=True)
class Queued:
    position: int  # 1 = next to run
    eta_seconds: float | None


@dataclass(frozen=True)
class Started:
    pass


@dataclass(frozen=True)
class Progress:
    step: int
    total: int
    eta_seconds: float | None
    # The newest live preview of the job (a small JPEG), when the engine made one.
    preview: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Downloading:
    """The model the job waits for is still being downloaded from the hub."""

    percent: int
    eta_seconds: float | None


@dataclass(frozen=True)
class Finished:
    images: list[ResultImage]


@dataclass(frozen=True)
class Failed:
    message: str  # fit to show the job's owner


@dataclass(frozen=True)
class Cancelled:
    by_admin: bool = False


JobEvent = Queued | Started | Progress | Downloading | Finished | Failed | Cancelled
# The events after which nothing more happens to a job.
ENDINGS = (Finished, Failed, Cancelled)

Listener = Callable[[Job, JobEvent], Awaitable[None]]

# Events held per platform while it has no listener; the oldest go first.
HELD_EVENTS = 1000
# Chat platforms limit message edits: at most this often per job (seconds).
PROGRESS_INTERVAL = 2.0
QUEUED_INTERVAL = 3.0


class _Delivery:
    def __init__(self, platform: str, listener: Listener) -> None:
        self.platform = platform
        self.listener = listener
        self.pending: deque[tuple[Job, JobEvent]] = deque()
        self.task: asyncio.Task[None] | None = None

    def push(self, job: Job, event: JobEvent) -> None:
        self.pending.append((job, event))
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self.pending:
            job, event = self.pending.popleft()
            try:
                await self.listener(job, event)
            except Exception:
                log.exception(
                    "%s listener failed on %s of job %s",
                    self.platform,
                    type(event).__name__,
                    job.id,
                )


class EventHub:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._deliveries: dict[str, list[_Delivery]] = {}
        self._held: dict[str, deque[tuple[Job, JobEvent]]] = {}
        self._clock = clock
        self._queued_sent: dict[str, tuple[int, float]] = {}  # job id -> (position, when)
        self._progress_sent: dict[str, float] = {}  # job id -> when
        self._download_sent: dict[str, float] = {}  # job id -> when
        self._preview_sent: dict[str, bytes] = {}  # job id -> the last preview passed on

    def add_listener(self, platform: str, listener: Listener) -> None:
        delivery = _Delivery(platform, listener)
        self._deliveries.setdefault(platform, []).append(delivery)
        for job, event in self._held.pop(platform, ()):
            delivery.push(job, event)

    def emit(self, job: Job, event: JobEvent) -> None:
        # A copy: the listener sees the job as it was when the event happened.
        snapshot = dataclasses.replace(job, origin=dict(job.origin), images=list(job.images))
        deliveries = self._deliveries.get(job.platform)
        if deliveries:
            for delivery in deliveries:
                delivery.push(snapshot, event)
        elif not isinstance(event, Progress | Downloading):  # stale by then
            held = self._held.setdefault(job.platform, deque(maxlen=HELD_EVENTS))
            held.append((snapshot, event))

    def queued(self, job: Job, position: int, eta: float | None, *, force: bool = False) -> bool:
        """Announce `job`'s position if it changed; False if held back by the throttle."""
        now = self._clock()
        last = self._queued_sent.get(job.id)
        if not force and last is not None:
            if last[0] == position:
                return True
            if now - last[1] < QUEUED_INTERVAL:
                return False
        self._queued_sent[job.id] = (position, now)
        self.emit(job, Queued(position, eta))
        return True

    def progress(
        self, job: Job, step: int, total: int, eta: float | None, preview: bytes | None = None
    ) -> None:
        """At most one Progress per job every PROGRESS_INTERVAL, and always the last step
        and a new preview (the engine spaces those out itself: `preview_every`)."""
        now = self._clock()
        last = self._progress_sent.get(job.id)
        new_preview = preview is not None and preview is not self._preview_sent.get(job.id)
        if step >= total or last is None or now - last >= PROGRESS_INTERVAL or new_preview:
            self._progress_sent[job.id] = now
            if preview is not None:
                self._preview_sent[job.id] = preview
            self.emit(job, Progress(step, total, eta, preview))

    def downloading(self, job: Job, event: Downloading) -> None:
        """At most one Downloading per job every PROGRESS_INTERVAL."""
        now = self._clock()
        last = self._download_sent.get(job.id)
        if last is None or now - last >= PROGRESS_INTERVAL:
            self._download_sent[job.id] = now
            self.emit(job, event)

    def forget(self, job_id: str) -> None:
        """The job is over: drop its throttling state."""
        self._queued_sent.pop(job_id, None)
        self._progress_sent.pop(job_id, None)
        self._download_sent.pop(job_id, None)
        self._preview_sent.pop(job_id, None)

    async def flush(self, timeout: float = 5.0) -> None:
        """Give pending deliveries `timeout` seconds to finish, then drop the rest."""
        tasks = [
            delivery.task
            for deliveries in self._deliveries.values()
            for delivery in deliveries
            if delivery.task is not None and not delivery.task.done()
        ]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
