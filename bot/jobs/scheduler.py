"""The scheduler: feeds the engine from a fair, persisted queue, and never stops.

Jobs wait in a `FairQueue` (round-robin across users). Each batch is the next job,
taken fairly, with waiting jobs that can share its pipeline call (same model, same
`ImageSpec.batch_key()`), up to `[engine] max_batch` pictures; up to the engine's
`capacity` batches run at once (1 for the local engine process, one per replica on
Ray). Every job is a row in the store before it is queued, and every change of state
is saved before the event that announces it, so a restart resumes where the bot
stopped. Whatever goes wrong with one batch ends its jobs in a state their owners are
told about (retried once, or failed with a message) and the loop goes on.

A job's final state and the message it owes its owner are saved together (the
store's outbox); the delivery layer sends that message and marks it delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.config import Config
from bot.jobs.eta import RunningBatch, Speed, work_units
from bot.jobs.events import (
    Cancelled,
    Downloading,
    EventHub,
    Failed,
    Finished,
    JobEvent,
    Started,
)
from bot.jobs.fair_queue import FairQueue
from bot.jobs.limits import Limits, QueueState, UserLocks, day_bounds
from bot.jobs.pictures import BatchSpecs, batch_key, batch_specs, save_pictures
from bot.jobs.positions import Positions
from bot.records import Caller, GenerationRequest, Job, JobStatus, OutboxEntry
from bot.store import Store, new_job_id
from engine.backend import EngineBackend
from engine.download import DownloadProgress
from engine.types import EngineCrashed, EngineError, GeneratedImage, GenerationCancelled

log = logging.getLogger("atelier.scheduler")

JobListener = Callable[[Job, JobEvent], Awaitable[None]]

# A job gets this many tries (engine crash, bot killed mid-job) before it fails.
MAX_ATTEMPTS = 2
# Seconds between looks at the engine's capacity while work waits (replicas come back).
CAPACITY_POLL = 1.0

CRASHED_TWICE = (
    "The engine crashed twice on this picture, so Atelier gave up on it. "
    "Try a smaller size or fewer steps."
)
STOPPED_TWICE = (
    "Atelier stopped twice while painting this picture, so it gave up on it. Please try again."
)
BLOCKED = "The picture was blocked by the image filter."
INPUT_MISSING = "The picture to start from is gone; please send it again."
NOT_SAVED = (
    "Atelier painted the picture but could not save it (the server's disk may be full); "
    "please try again later."
)
UNEXPECTED = "Something went wrong while painting this picture; the details are in the log."
RESTARTING = "Atelier is restarting — try again in a minute."


class Refused(Exception):
    """A request the scheduler turned down; `str(exc)` is the message for the user."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Scheduler:
    def __init__(
        self,
        config: Config,
        store: Store,
        engine: EngineBackend,
        *,
        limits: Limits | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.engine = engine
        self.limits = limits or Limits(config.limits)
        self.events = EventHub()
        self._queue = FairQueue(weight=lambda job: work_units(job.request))
        self._running: dict[str, RunningBatch] = {}
        self._speed = Speed(config.engine.device)
        self._positions = Positions(
            self._queue,
            self.events,
            self._speed,
            lambda: list(self._running.values()),
            lambda: self.engine.capacity,
        )
        self._current_model = config.engine.default_model
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        # Model switches waiting for the engine to be idle; no batch starts meanwhile.
        self._holds = 0
        self._draining = False
        # A user's limits are checked and their job saved as one step.
        self._user_locks = UserLocks()
        self._saving = 0  # jobs accepted and being written to the store
        self._task: asyncio.Task[None] | None = None
        self._batches: dict[str, asyncio.Task[None]] = {}
        self._download: Downloading | None = None  # while the engine downloads a model

    # -- life --------------------------------------------------------------------

    @property
    def current_model(self) -> str:
        return self._current_model

    async def start(self) -> None:
        """Resume the saved queue (a job left running is retried once) and start serving."""
        self._draining = False
        stored_model = await self.store.get_setting("current_model")
        if stored_model and stored_model in self.config.models:
            self._current_model = stored_model
        for job in await self.store.jobs_with_status(JobStatus.RUNNING):
            if job.attempts >= MAX_ATTEMPTS:
                await self._finish(job, JobStatus.FAILED, Failed(STOPPED_TWICE))
                continue
            log.info("job %s was running when Atelier stopped: trying it again", job.id)
            job.status = JobStatus.QUEUED
            await self.store.update_job(job)
            self._queue.push(job)
        for job in await self.store.jobs_with_status(JobStatus.QUEUED):
            if job.id not in self._queue:
                self._queue.push(job)
        self._positions.announce(force=True)
        # Replicas come and go (Ray): look again at once rather than at the next poll.
        self.engine.on_capacity_change(self._wakeup.set)
        # The local engine reports model downloads; Ray replicas only log theirs.
        on_download = getattr(self.engine, "on_download", None)
        if on_download is not None:
            on_download(self._on_download)
        self._task = asyncio.get_running_loop().create_task(self._serve(), name="scheduler")

    async def drain(self, timeout: float) -> None:
        """Stop taking jobs, give running batches `timeout` seconds to finish, then stop."""
        self._draining = True
        running = list(self._batches.values())
        if running:
            await asyncio.wait(running, timeout=timeout)
        await self.stop()

    async def stop(self) -> None:
        """Stop serving at once; waiting and interrupted jobs stay queued in the store."""
        self._positions.cancel()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        interrupted = list(self._running.values())
        batches = list(self._batches.values())
        for batch_task in batches:
            batch_task.cancel()
        await asyncio.gather(*batches, return_exceptions=True)
        for batch in interrupted:
            # A stop is not the job's fault: it keeps its try for the next start.
            for job in reversed(batch.unfinished()):
                if job.status is JobStatus.RUNNING:
                    job.attempts -= 1
                job.status, job.started_at = JobStatus.QUEUED, None
                await self.store.update_job(job)
                self._queue.push_front(job)
        await self.events.flush()

    def add_listener(self, platform: str, listener: JobListener) -> None:
        """Deliver every event of `platform`'s jobs to `listener`, in order, per listener."""
        self.events.add_listener(platform, listener)

    # -- requests ----------------------------------------------------------------

    async def submit(self, caller: Caller, request: GenerationRequest, origin: dict) -> Job:
        """Queue a job for `caller`, or raise `Refused` saying when to try again."""
        return (await self.submit_group(caller, [(request, origin)]))[0]

    async def submit_group(
        self,
        caller: Caller,
        work: list[tuple[GenerationRequest, dict]],
        *,
        save: Callable[[list[Job]], Awaitable[None]] | None = None,
    ) -> list[Job]:
        """Queue several jobs asked for at once (a /plot's cells), or none of them.

        The limits see them together: the quota counts all their pictures, the queue
        all the jobs, the per-minute rate one request. `save` writes the new jobs in
        one commit (the plot with its cells); by default each is added on its own.
        """
        if self._draining:
            raise Refused(RESTARTING, 60.0)
        async with self._user_locks.hold(caller.key):
            banned = await self.store.is_banned(caller.key)
            quota_on = self.config.limits.daily_quota > 0 and not caller.is_admin
            images_today = 0
            if quota_on:
                since, until = day_bounds(time.time())
                images_today = await self.store.images_today(caller.key, since=since, until=until)
            state = QueueState(
                # Jobs of other users being saved right now count too.
                queue_size=len(self._queue) + len(self._running_jobs()) + self._saving,
                user_jobs=len(self.jobs_of(caller.key)),
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
                self._queue.push(job)
        for job in jobs:
            position, eta = self._positions.place(job)
            self.events.queued(job, position, eta, force=True)
        self._positions.announce_soon()
        self._wakeup.set()
        return jobs

    async def update_origin(self, job_id: str, changes: dict[str, Any]) -> None:
        """Merge what the adapter learnt (message ids…) into the job's origin; a None
        value removes that key."""
        job = self._queue.get(job_id) or self._running_job(job_id)
        if job is not None:
            job.origin.update(changes)
            for key in [key for key, value in changes.items() if value is None]:
                del job.origin[key]
        await self.store.update_origin(job_id, changes)

    async def cancel(self, job_id: str, caller: Caller) -> bool:
        """Cancel a waiting or running job; False if it is not (or no longer) either.

        Raises `Refused` when `caller` may not: neither its owner nor an admin of the
        place it was asked in.
        """
        job = self._queue.get(job_id)
        running = job is None
        if running:
            job = self._running_job(job_id)
        if job is None:
            return False
        by_admin = job.user_key != caller.key
        if by_admin and not caller.moderates(job.place):
            raise Refused("You can only cancel your own pictures.")
        if not running:
            self._queue.remove(job_id)
            self._positions.announce_soon()
        await self._finish(job, JobStatus.CANCELLED, Cancelled(by_admin=by_admin))
        if by_admin:
            await self.store.audit(caller.key, "cancel", f"job {job_id} of {job.user_key}")
        for batch in self._running.values():
            if job in batch.jobs and not batch.unfinished():
                await self.engine.cancel(batch.id)
        return True

    def position(self, job_id: str) -> tuple[int, float | None] | None:
        """(1-based position, seconds until done) for a waiting job; (0, …) when running."""
        job = self._queue.get(job_id)
        if job is not None:
            return self._positions.place(job)
        job = self._running_job(job_id)
        if job is not None:
            return 0, self._positions.running_left([job])
        return None

    def jobs_of(self, user_key: str) -> list[Job]:
        """The user's running jobs, then their waiting ones in order."""
        running = [job for job in self._running_jobs() if job.user_key == user_key]
        return running + self._queue.jobs_of(user_key)

    @property
    def downloading(self) -> Downloading | None:
        """What waiting jobs are told while the engine downloads a model."""
        return self._download

    def waits_for_model(self, job: Job) -> bool:
        """The job's model is not loaded anywhere: it will wait for a switch."""
        loaded = self.engine.loaded_models()
        return bool(loaded) and self._model_of(job) not in loaded

    async def switch_model(self, name: str, *, by: str = "") -> str:
        """Load `name` for everyone once the running batches are done; survives a restart.

        Queued jobs that did not name a model run on the new one.
        """
        if name not in self.config.models:
            known = ", ".join(sorted(self.config.models)) or "none"
            raise Refused(f"There is no model called {name!r}. Models: {known}.")
        self._holds += 1
        try:
            await self._idle.wait()
            try:
                display = await self.engine.load_model(name)
            except EngineError as exc:
                raise Refused(str(exc)) from None
            self._current_model = name
            await self.store.set_setting("current_model", name)
        finally:
            self._holds -= 1
            self._wakeup.set()
        await self.store.audit(by or "admin", "switch_model", name)
        log.info("model switched to %s by %s", name, by or "an admin")
        return display

    # -- serving -----------------------------------------------------------------

    async def _serve(self) -> None:
        await self._preload()
        while True:
            try:
                batch = self._next_batch()
            except Exception:
                # A bug in choosing a batch must not end the service; try again soon.
                log.exception("choosing the next batch failed")
                batch = None
                await asyncio.sleep(CAPACITY_POLL)
            if batch is None:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CAPACITY_POLL):
                        await self._wakeup.wait()
                continue
            self._idle.clear()
            task = asyncio.get_running_loop().create_task(self._run(batch), name=batch.id)
            self._batches[batch.id] = task

    async def _preload(self) -> None:
        """Load the current model before the first job, so it does not wait for it."""
        if not self._current_model or self._current_model in self.engine.loaded_models():
            return
        self._holds += 1
        try:
            await self.engine.load_model(self._current_model)
        except EngineError as exc:
            log.error("cannot load the model %s: %s", self._current_model, exc)
        finally:
            self._holds -= 1

    def _next_batch(self) -> RunningBatch | None:
        if self._draining or self._holds or not self._queue:
            return None
        if len(self._running) >= max(1, self.engine.capacity):
            return None
        model = self._model_of

        def fits_with(first: Job, other: Job) -> bool:
            return model(other) == model(first) and batch_key(other.request) == batch_key(
                first.request
            )

        jobs = self._queue.take_batch(
            fits_with,
            lambda job: job.request.count,
            self.config.engine.batch_limit,
            first=self._passing_over(),
        )
        batch_model = model(jobs[0])
        for job in jobs:
            if job.request.model != batch_model:
                # An admin's switch moved it: the caption and the store say so too.
                job.request = dataclasses.replace(job.request, model=batch_model)
        batch = RunningBatch(
            id=jobs[0].id,
            jobs=jobs,
            model=batch_model,
            work=sum(work_units(job.request) for job in jobs),
        )
        self._running[batch.id] = batch
        self._positions.announce_soon()
        return batch

    def _passing_over(self) -> Job | None:
        """A waiting job of a loaded model to serve before the next one, whose model is
        not loaded — unless that one has waited `model_switch_wait` already."""
        loaded = self.engine.loaded_models()
        order = self._queue.order()
        head = next(order)
        if not loaded or self._model_of(head) in loaded:
            return None
        if time.time() - head.created_at >= self.config.engine.model_switch_wait:
            return None
        return next((job for job in order if self._model_of(job) in loaded), None)

    async def _run(self, batch: RunningBatch) -> None:
        """Run one batch; whatever fails, its jobs end in a state their owners hear of."""
        try:
            await self._paint(batch)
        except Exception:
            log.exception("batch %s failed", batch.id)
            for job in batch.unfinished():
                try:
                    await self._finish(job, JobStatus.FAILED, Failed(UNEXPECTED))
                except Exception:
                    # The store itself fails: the job stays running in it, and is
                    # retried after the next start.
                    log.exception("job %s: the failure could not be saved", job.id)
        finally:
            self._running.pop(batch.id, None)
            self._batches.pop(batch.id, None)
            if not self._running:
                self._idle.set()
            self._wakeup.set()

    async def _paint(self, batch: RunningBatch) -> None:
        work = await batch_specs(batch.jobs, self.config.data_dir)
        for job in work.missing:
            log.warning("job %s: input %s is missing", job.id, job.request.init_image)
            await self._finish(job, JobStatus.FAILED, Failed(INPUT_MISSING))
        started = time.time()
        for job, _, _ in work.slices:
            if not job.status.finished:
                job.status, job.started_at = JobStatus.RUNNING, started
                job.attempts += 1
                await self.store.update_job(job)
                self.events.emit(job, Started())
        if not batch.unfinished():
            return
        model_was_loaded = batch.model in self.engine.loaded_models()
        clock = time.monotonic()
        try:
            images = await self.engine.generate(
                batch.id,
                batch.model,
                work.specs,
                lambda step, total: self._on_progress(batch, step, total),
                timeout=self.config.engine.job_timeout,
                on_preview=lambda pictures: self._on_preview(batch, work, pictures),
            )
        except GenerationCancelled:
            for job in batch.unfinished():
                await self._finish(job, JobStatus.CANCELLED, Cancelled())
            return
        except EngineCrashed as exc:
            log.warning("engine crashed on batch %s: %s", batch.id, exc)
            await self._retry_or_fail(batch.unfinished(), CRASHED_TWICE)
            return
        except EngineError as exc:
            for job in batch.unfinished():
                await self._finish(job, JobStatus.FAILED, Failed(str(exc)))
            return
        if model_was_loaded:
            self._speed.measure(time.monotonic() - clock, batch.work)
        await self._keep(work, images)

    async def _keep(self, work: BatchSpecs, images: list[GeneratedImage]) -> None:
        """Save each job's pictures and hand the result to the outbox."""
        action = self.config.safety.nsfw_action
        for job, begin, end in work.slices:
            if job.status.finished:  # cancelled while it was painted
                continue
            try:
                saved = await save_pictures(self.config.data_dir, job.id, images[begin:end], action)
            except OSError as exc:
                log.error("job %s: saving its pictures failed: %s", job.id, exc)
                await self._finish(job, JobStatus.FAILED, Failed(NOT_SAVED))
                continue
            if job.status.finished:  # cancelled while the files were written
                continue
            if not saved:
                await self._finish(job, JobStatus.FAILED, Failed(BLOCKED))
                continue
            job.images = saved
            await self._finish(job, JobStatus.DELIVERING, Finished(list(saved)))

    async def _retry_or_fail(self, jobs: list[Job], message: str) -> None:
        for job in reversed(jobs):  # pushed to the front one by one: keep their order
            if job.attempts >= MAX_ATTEMPTS:
                await self._finish(job, JobStatus.FAILED, Failed(message))
                continue
            job.status, job.started_at = JobStatus.QUEUED, None
            await self.store.update_job(job)
            self._queue.push_front(job)
            position, eta = self._positions.place(job)
            self.events.queued(job, position, eta, force=True)
        self._positions.announce_soon()

    async def _finish(
        self, job: Job, status: JobStatus, event: Finished | Failed | Cancelled
    ) -> None:
        """Save the job's end and the message it owes, then announce it."""
        job.status, job.finished_at = status, time.time()
        job.error = event.message if isinstance(event, Failed) else None
        await self.store.finish_job(job, outbox_entry(job.id, event))
        self.events.emit(job, event)
        self.events.forget(job.id)

    # -- progress and ETAs -------------------------------------------------------

    def _on_progress(self, batch: RunningBatch, step: int, total: int) -> None:
        if total > 0:
            batch.done_fraction = min(1.0, step / total)
            eta = self._speed.left(batch)
            for job in batch.unfinished():
                self.events.progress(job, step, total, eta, batch.previews.get(job.id))

    @staticmethod
    def _on_preview(batch: RunningBatch, work: BatchSpecs, pictures: dict[int, bytes]) -> None:
        """Keep each job's newest preview (of its first picture being painted); the
        next Progress event takes it to the chat, within the status line's throttle."""
        for job, begin, end in work.slices:
            first = next((index for index in range(begin, end) if index in pictures), None)
            if first is not None:
                batch.previews[job.id] = pictures[first]

    def _on_download(self, progress: DownloadProgress | None) -> None:
        """Every job waits while a model downloads (the engine does nothing else): each
        hears how far it is, instead of a queue position that does not move."""
        if progress is None:
            if self._download is not None:
                self._download = None
                self._positions.announce(force=True)
            return
        self._download = Downloading(progress.percent, progress.eta_seconds)
        for job in [*self._running_jobs(), *self._queue.order()]:
            self.events.downloading(job, self._download)

    def _first_done_in(self, user_key: str) -> float | None:
        running = [job for job in self._running_jobs() if job.user_key == user_key]
        if running:
            return self._positions.running_left(running)
        waiting = self._queue.jobs_of(user_key)
        if not waiting:
            return None
        return self._positions.place(waiting[0])[1]

    # -- helpers -----------------------------------------------------------------

    def _running_jobs(self) -> list[Job]:
        return [job for batch in self._running.values() for job in batch.unfinished()]

    def _running_job(self, job_id: str) -> Job | None:
        return next((job for job in self._running_jobs() if job.id == job_id), None)

    def _model_of(self, job: Job) -> str:
        request = job.request
        return request.model if request.model_given and request.model else self._current_model


def outbox_entry(job_id: str, event: Finished | Failed | Cancelled) -> OutboxEntry:
    """The message a finished job owes its owner."""
    if isinstance(event, Finished):
        return OutboxEntry(job_id, "result")
    if isinstance(event, Failed):
        return OutboxEntry(job_id, "failed", event.message)
    return OutboxEntry(job_id, "cancelled", "by_admin" if event.by_admin else "")
