"""The scheduler: one asyncio task feeding the engine from a fair, persisted queue.

Jobs wait in a `FairQueue` (round-robin across users). The next job is taken fairly,
together with waiting jobs that can share its pipeline call (same model, same
`ImageSpec.batch_key()`), up to `[engine] max_batch` pictures. Every job is a row in
the store before it is queued, and every change of state is saved before the event
that announces it, so a restart resumes where the bot stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot.commands.base import Caller
from bot.config import Config
from bot.jobs.eta import RunningBatch, Speed, work_units
from bot.jobs.events import QUEUED_INTERVAL, EventHub
from bot.jobs.fair_queue import FairQueue
from bot.jobs.limits import Limits, QueueState, UserLocks
from bot.jobs.models import (
    Cancelled,
    Failed,
    Finished,
    GenerationRequest,
    Job,
    JobEvent,
    JobStatus,
    Started,
)
from bot.jobs.pictures import batch_key, batch_specs, save_pictures
from bot.store import Store, new_job_id
from engine.client import EngineClient
from engine.types import EngineCrashed, EngineError, GeneratedImage, GenerationCancelled

log = logging.getLogger("atelier.scheduler")

JobListener = Callable[[Job, JobEvent], Awaitable[None]]

# A job gets this many tries (engine crash, bot killed mid-job) before it fails.
MAX_ATTEMPTS = 2
POSITION_UPDATE_DELAY = 0.5  # queue changes within this are announced together

CRASHED_TWICE = (
    "The engine crashed twice on this picture, so Atelier gave up on it. "
    "Try a smaller size or fewer steps."
)
STOPPED_TWICE = (
    "Atelier stopped twice while painting this picture, so it gave up on it. Please try again."
)
BLOCKED = "The picture was blocked by the image filter."
INPUT_MISSING = "The picture to start from is gone; please send it again."
UNEXPECTED = "Something went wrong while painting this picture; the details are in the log."


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
        engine: EngineClient,
        *,
        limits: Limits | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.engine = engine
        self.limits = limits or Limits(config.limits)
        self._queue = FairQueue(weight=lambda job: work_units(job.request))
        self._running: RunningBatch | None = None
        self._events = EventHub()
        self._speed = Speed(config.engine.device)
        self._current_model = config.engine.default_model
        self._wakeup = asyncio.Event()
        # Held while the engine works on a batch: a model switch waits for it.
        self._engine_lock = asyncio.Lock()
        # A user's limits are checked and their job saved as one step.
        self._user_locks = UserLocks()
        self._saving = 0  # jobs accepted and being written to the store
        self._task: asyncio.Task[None] | None = None
        self._position_update: asyncio.TimerHandle | None = None

    # -- life --------------------------------------------------------------------

    @property
    def current_model(self) -> str:
        return self._current_model

    async def start(self) -> None:
        """Resume the saved queue (a job left running is retried once) and start serving."""
        stored_model = await self.store.get_setting("current_model")
        if stored_model and stored_model in self.config.models:
            self._current_model = stored_model
        for job in await self.store.jobs_with_status(JobStatus.RUNNING):
            if job.attempts >= MAX_ATTEMPTS:
                await self._finish(
                    job, JobStatus.FAILED, Failed(STOPPED_TWICE), error=STOPPED_TWICE
                )
                continue
            log.info("job %s was running when Atelier stopped: trying it again", job.id)
            job.status = JobStatus.QUEUED
            await self.store.update_job(job)
            self._queue.push(job)
        for job in await self.store.jobs_with_status(JobStatus.QUEUED):
            if job.id not in self._queue:
                self._queue.push(job)
        self._announce_positions(force=True)
        self._task = asyncio.get_running_loop().create_task(self._serve(), name="scheduler")

    async def stop(self) -> None:
        """Stop serving at once; waiting and interrupted jobs stay queued in the store."""
        if self._position_update is not None:
            self._position_update.cancel()
            self._position_update = None
        task, self._task = self._task, None
        batch = self._running
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._running = None
        if batch is not None:
            await self.engine.cancel(batch.id)
            # A stop is not the job's fault: it keeps its try for the next start.
            for job in reversed(batch.unfinished()):
                if job.status is JobStatus.RUNNING:
                    job.attempts -= 1
                job.status, job.started_at = JobStatus.QUEUED, None
                await self.store.update_job(job)
                self._queue.push_front(job)
        await self._events.flush()

    def add_listener(self, platform: str, listener: JobListener) -> None:
        """Deliver every event of `platform`'s jobs to `listener`, in order, per listener."""
        self._events.add_listener(platform, listener)

    # -- requests ----------------------------------------------------------------

    async def submit(self, caller: Caller, request: GenerationRequest, origin: dict) -> Job:
        """Queue a job for `caller`, or raise `Refused` saying when to try again."""
        async with self._user_locks.hold(caller.key):
            banned = await self.store.is_banned(caller.key)
            quota_on = self.config.limits.daily_quota > 0 and not caller.is_admin
            images_today = await self.store.images_today(caller.key) if quota_on else 0
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
                images_wanted=request.count,
                state=state,
            )
            if refusal is not None:
                await self.store.audit(caller.key, "refused", refusal.message)
                raise Refused(refusal.message, refusal.retry_after)
            job = Job(
                id=new_job_id(),
                platform=caller.platform,
                user_id=caller.user_id,
                user_name=caller.name,
                request=request,
                origin=dict(origin),
                created_at=time.time(),
            )
            self.limits.record(caller.key, is_admin=caller.is_admin)
            self._saving += 1
            try:
                await self.store.add_job(job)
            finally:
                self._saving -= 1
            self._queue.push(job)
        position, eta = self._place(job)
        self._events.queued(job, position, eta, force=True)
        self._schedule_position_update()
        self._wakeup.set()
        return job

    async def set_origin(self, job_id: str, origin: dict) -> None:
        job = self._queue.get(job_id) or next(
            (job for job in self._running_jobs() if job.id == job_id), None
        )
        if job is not None:
            job.origin = dict(origin)
        await self.store.set_origin(job_id, origin)

    async def cancel(self, job_id: str, caller: Caller) -> bool:
        """Cancel a waiting or running job; False if it is not (or no longer) either.

        Raises `Refused` when `caller` is neither its owner nor an admin.
        """
        job = self._queue.get(job_id)
        running = job is None
        if running:
            job = next((j for j in self._running_jobs() if j.id == job_id), None)
        if job is None:
            return False
        by_admin = job.user_key != caller.key
        if by_admin and not caller.is_admin:
            raise Refused("You can only cancel your own pictures.")
        if not running:
            self._queue.remove(job_id)
            self._schedule_position_update()
        await self._finish(job, JobStatus.CANCELLED, Cancelled(by_admin=by_admin))
        if by_admin:
            await self.store.audit(caller.key, "cancel", f"job {job_id} of {job.user_key}")
        batch = self._running
        if running and batch is not None and not batch.unfinished():
            await self.engine.cancel(batch.id)
        return True

    def position(self, job_id: str) -> tuple[int, float | None] | None:
        """(1-based position, seconds until done) for a waiting job; (0, …) when running."""
        job = self._queue.get(job_id)
        if job is not None:
            return self._place(job)
        if any(job.id == job_id for job in self._running_jobs()):
            return 0, self._running_left()
        return None

    def jobs_of(self, user_key: str) -> list[Job]:
        """The user's running jobs, then their waiting ones in order."""
        running = [job for job in self._running_jobs() if job.user_key == user_key]
        return running + self._queue.jobs_of(user_key)

    async def switch_model(self, name: str, *, by: str = "") -> str:
        """Load `name` for everyone once the running batch is done; survives a restart."""
        if name not in self.config.models:
            known = ", ".join(sorted(self.config.models)) or "none"
            raise Refused(f"There is no model called {name!r}. Models: {known}.")
        async with self._engine_lock:
            try:
                display = await self.engine.load_model(name)
            except EngineError as exc:
                raise Refused(str(exc)) from None
            self._current_model = name
            await self.store.set_setting("current_model", name)
        await self.store.audit(by or "admin", "switch_model", name)
        log.info("model switched to %s by %s", name, by or "an admin")
        return display

    # -- serving -----------------------------------------------------------------

    async def _serve(self) -> None:
        await self._preload()
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            async with self._engine_lock:
                batch = self._take_batch()
                self._schedule_position_update()
                try:
                    await self._run_batch(batch)
                except Exception:
                    # The store or a file failed: the batch is lost, the queue goes on.
                    log.exception("batch %s could not be run", batch.id)
                finally:
                    self._running = None

    async def _preload(self) -> None:
        """Load the current model before the first job, so it does not wait for it."""
        if not self._current_model or self.engine.current_model == self._current_model:
            return
        async with self._engine_lock:
            try:
                await self.engine.load_model(self._current_model)
            except EngineError as exc:
                log.error("cannot load the model %s: %s", self._current_model, exc)

    def _take_batch(self) -> RunningBatch:
        def fits_with(first: Job, other: Job) -> bool:
            return self._model_of(other) == self._model_of(first) and batch_key(
                other.request
            ) == batch_key(first.request)

        jobs = self._queue.take_batch(
            fits_with, lambda job: job.request.count, self.config.engine.max_batch
        )
        self._running = RunningBatch(
            id=jobs[0].id,
            jobs=jobs,
            model=self._model_of(jobs[0]),
            work=sum(work_units(job.request) for job in jobs),
        )
        return self._running

    async def _run_batch(self, batch: RunningBatch) -> None:
        work = await batch_specs(batch.jobs, self.config.data_dir)
        for job in work.missing:
            log.warning("job %s: input %s is missing", job.id, job.request.init_image)
            if not job.status.finished:
                await self._finish(job, JobStatus.FAILED, Failed(INPUT_MISSING), INPUT_MISSING)
        started = time.time()
        for job, _, _ in work.slices:
            if not job.status.finished:
                job.status, job.started_at = JobStatus.RUNNING, started
                job.attempts += 1
                await self.store.update_job(job)
                self._events.emit(job, Started())
        if not batch.unfinished():
            return
        model_was_loaded = self.engine.current_model == batch.model
        clock = time.monotonic()
        try:
            images = await self.engine.generate(
                batch.id,
                batch.model,
                work.specs,
                lambda step, total: self._on_progress(batch, step, total),
                timeout=self.config.engine.job_timeout,
            )
        except GenerationCancelled:
            for job in batch.unfinished():
                await self._finish(job, JobStatus.CANCELLED, Cancelled())
        except EngineCrashed as exc:
            log.warning("engine crashed on batch %s: %s", batch.id, exc)
            await self._retry_or_fail(batch.unfinished(), CRASHED_TWICE)
        except EngineError as exc:
            for job in batch.unfinished():
                await self._finish(job, JobStatus.FAILED, Failed(str(exc)), str(exc))
        except Exception:
            log.exception("batch %s failed", batch.id)
            for job in batch.unfinished():
                await self._finish(job, JobStatus.FAILED, Failed(UNEXPECTED), UNEXPECTED)
        else:
            if model_was_loaded:
                self._speed.measure(time.monotonic() - clock, batch.work)
            for job, begin, end in work.slices:
                if not job.status.finished:
                    await self._deliver(job, images[begin:end])

    async def _deliver(self, job: Job, images: list[GeneratedImage]) -> None:
        action = self.config.safety.nsfw_action
        saved = await save_pictures(self.config.data_dir, job.id, images, action)
        if job.status.finished:  # cancelled while the files were written
            return
        if not saved:
            await self._finish(job, JobStatus.FAILED, Failed(BLOCKED), BLOCKED)
            return
        job.images = saved
        await self._finish(job, JobStatus.DONE, Finished(list(saved)))

    async def _retry_or_fail(self, jobs: list[Job], message: str) -> None:
        for job in reversed(jobs):  # pushed to the front one by one: keep their order
            if job.attempts >= MAX_ATTEMPTS:
                await self._finish(job, JobStatus.FAILED, Failed(message), message)
                continue
            job.status, job.started_at = JobStatus.QUEUED, None
            await self.store.update_job(job)
            self._queue.push_front(job)
            position, eta = self._place(job)
            self._events.queued(job, position, eta, force=True)
        self._schedule_position_update()

    async def _finish(
        self, job: Job, status: JobStatus, event: JobEvent, error: str | None = None
    ) -> None:
        job.status, job.finished_at, job.error = status, time.time(), error
        await self.store.update_job(job)
        self._events.emit(job, event)
        self._events.forget(job.id)

    # -- progress, positions and ETAs --------------------------------------------

    def _on_progress(self, batch: RunningBatch, step: int, total: int) -> None:
        if total > 0:
            batch.done_fraction = min(1.0, step / total)
            eta = self._speed.left(batch)
            for job in batch.unfinished():
                self._events.progress(job, step, total, eta)

    def _running_left(self) -> float:
        return self._speed.left(self._running)

    def _place(self, job: Job) -> tuple[int, float]:
        """A waiting job's position (1 = next) and seconds until it is done."""
        count, work = self._queue.ahead(job)
        return count + 1, self._speed.until_done(work, job, self._running)

    def _first_done_in(self, user_key: str) -> float | None:
        if any(job.user_key == user_key for job in self._running_jobs()):
            return self._running_left()
        waiting = self._queue.jobs_of(user_key)
        if not waiting:
            return None
        return self._place(waiting[0])[1]

    def _schedule_position_update(self) -> None:
        if self._position_update is None:
            loop = asyncio.get_running_loop()
            self._position_update = loop.call_later(POSITION_UPDATE_DELAY, self._announce_positions)

    def _announce_positions(self, force: bool = False) -> None:
        """Queued(position, eta) to every waiting job whose position changed."""
        self._position_update = None
        held_back = False
        work_ahead = 0.0
        for index, job in enumerate(self._queue.order()):
            eta = self._speed.until_done(work_ahead, job, self._running)
            work_ahead += self._queue.weight(job)
            if not self._events.queued(job, index + 1, eta, force=force):
                held_back = True
        if held_back:
            # Try again once the throttle lets those through.
            self._position_update = asyncio.get_running_loop().call_later(
                QUEUED_INTERVAL, self._announce_positions
            )

    # -- helpers -----------------------------------------------------------------

    def _running_jobs(self) -> list[Job]:
        return self._running.unfinished() if self._running is not None else []

    def _model_of(self, job: Job) -> str:
        return job.request.model or self._current_model
