"""Telling waiting jobs where they stand: positions and ETAs, announced sparingly.

Queue changes that come close together are announced together, and a job hears of a
new position at most every `QUEUED_INTERVAL` (the hub's throttle); a change held back
by the throttle is announced once it lets it through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.jobs.eta import RunningBatch, Speed
from bot.jobs.events import QUEUED_INTERVAL, EventHub
from bot.jobs.fair_queue import FairQueue
from bot.records import Job

UPDATE_DELAY = 0.5  # queue changes within this are announced together


class Positions:
    def __init__(
        self,
        queue: FairQueue,
        events: EventHub,
        speed: Speed,
        running: Callable[[], list[RunningBatch]],
        capacity: Callable[[], int],
    ) -> None:
        self._queue = queue
        self._events = events
        self._speed = speed
        self._running = running
        self._capacity = capacity
        self._update: asyncio.TimerHandle | None = None

    def place(self, job: Job) -> tuple[int, float]:
        """A waiting job's position (1 = next) and seconds until it is done."""
        count, work = self._queue.ahead(job)
        return count + 1, self._eta(work, job)

    def running_left(self, jobs: list[Job] | None = None) -> float:
        """Seconds until the running batch holding any of `jobs` (or all) is done."""
        batches = [
            batch
            for batch in self._running()
            if jobs is None or any(job in batch.jobs for job in jobs)
        ]
        return max((self._speed.left(batch) for batch in batches), default=0.0)

    def announce_soon(self) -> None:
        if self._update is None:
            loop = asyncio.get_running_loop()
            self._update = loop.call_later(UPDATE_DELAY, self.announce)

    def announce(self, force: bool = False) -> None:
        """Queued(position, eta) to every waiting job whose position changed."""
        self._update = None
        held_back = False
        work_ahead = 0.0
        for index, job in enumerate(self._queue.order()):
            eta = self._eta(work_ahead, job)
            work_ahead += self._queue.weight(job)
            if not self._events.queued(job, index + 1, eta, force=force):
                held_back = True
        if held_back:
            # Try again once the throttle lets those through.
            self._update = asyncio.get_running_loop().call_later(QUEUED_INTERVAL, self.announce)

    def cancel(self) -> None:
        if self._update is not None:
            self._update.cancel()
            self._update = None

    def _eta(self, work_ahead: float, job: Job) -> float:
        return self._speed.until_done(work_ahead, job, self._running(), self._capacity())
