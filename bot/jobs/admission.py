"""Admission: whether a user's request may join the queue, and the jobs it becomes.

A user's limits are checked and their new jobs saved and queued as one step, under a
per-user lock, so two requests sent at once cannot both slip under a limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bot.config import Config
from bot.jobs.limits import Limits, QueueState, UserLocks, day_bounds
from bot.records import Caller, GenerationRequest, Job
from bot.store import Store, new_job_id

RESTARTING = "Atelier is restarting — try again in a minute."

SaveJobs = Callable[[list[Job]], Awaitable[None]]


class Refused(Exception):
    """A request the scheduler turned down; `str(exc)` is the message for the user."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Admission:
    """Checks a user's request against the limits and turns it into saved, queued jobs.

    What it needs to know of the queue comes as callables, so it does not depend on
    the scheduler: `busy` (jobs waiting or running), `jobs_of` (a user's jobs),
    `first_done_in` (seconds until one of a user's jobs is done) and `enqueue`.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        limits: Limits,
        *,
        busy: Callable[[], int],
        jobs_of: Callable[[str], list[Job]],
        first_done_in: Callable[[str], float | None],
        enqueue: Callable[[Job], None],
    ) -> None:
        self.config = config
        self.store = store
        self.limits = limits
        self._busy = busy
        self._jobs_of = jobs_of
        self._first_done_in = first_done_in
        self._enqueue = enqueue
        # A user's limits are checked and their job saved as one step.
        self._user_locks = UserLocks()
        self._saving = 0  # jobs accepted and being written to the store

    async def admit(
        self,
        caller: Caller,
        work: list[tuple[GenerationRequest, dict]],
        *,
        save: SaveJobs | None = None,
    ) -> list[Job]:
        """Save and queue `work` as `caller`'s jobs, all or none; raise `Refused` if a
        limit says no."""
        async with self._user_locks.hold(caller.key):
            banned = await self.store.is_banned(caller.key)
            quota_on = self.config.limits.daily_quota > 0 and not caller.is_admin
            images_today = 0
            if quota_on:
                since, until = day_bounds(time.time())
                images_today = await self.store.images_today(caller.key, since=since, until=until)
            state = QueueState(
                # Jobs of other users being saved right now count too.
                queue_size=self._busy() + self._saving,
                user_jobs=len(self._jobs_of(caller.key)),
                user_slot_free_in=lambda: self._first_done_in(caller.key),
                images_today=images_today,
            )
            refusal = self.limits.check(
                caller.key,
                is_admin=caller.is_admin,
                banned=banned,
                images_wanted=sum(request.count for request, _ in work),
                state=state,
                jobs_wanted=len(work),
            )
            if refusal is not None:
                await self.store.audit(caller.key, "refused", refusal.message)
                raise Refused(refusal.message, refusal.retry_after)
            now = time.time()
            jobs = [
                Job(
                    id=new_job_id(),
                    platform=caller.platform,
                    user_id=caller.user_id,
                    user_name=caller.name,
                    request=request,
                    origin=dict(origin),
                    created_at=now,
                    place=caller.place,
                )
                for request, origin in work
            ]
            self.limits.record(caller.key, is_admin=caller.is_admin)
            self._saving += len(jobs)
            try:
                if save is not None:
                    await save(jobs)
                else:
                    await asyncio.gather(*(self.store.add_job(job) for job in jobs))
            finally:
                self._saving -= len(jobs)
            for job in jobs:
                self._enqueue(job)
        return jobs
