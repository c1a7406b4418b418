"""The scheduler: feeds the engine from a fair, persisted queue, and never stops.

Jobs wait in a `FairQueue` (round-robin across users); `admission.py` decides which
requests join it. Each batch is chosen by `batch_choice.py` and painted by
`painting.py`; up to the engine's `capacity` batches run at once (1 for the local
engine process, one per replica on Ray). Every job is a row in the store before it is
queued, and every change of state is saved before the event that announces it, so a
restart resumes where the bot stopped. Whatever goes wrong with one batch ends its
jobs in a state their owners are told about (retried once, or failed with a message)
and the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.config import Config
from bot.jobs.admission import RESTARTING, Admission, Refused, SaveJobs
from bot.jobs.batch_choice import choose_batch, model_of
from bot.jobs.eta import RunningBatch, Speed, work_units
from bot.jobs.events import Cancelled, Downloading, EventHub, Failed, JobEvent
from bot.jobs.fair_queue import FairQueue
from bot.jobs.limits import Limits
from bot.jobs.painting import MAX_ATTEMPTS, STOPPED_TWICE, Painter
from bot.jobs.positions import Positions
from bot.records import Caller, GenerationRequest, Job, JobStatus
from bot.store import Store
from engine.backend import EngineBackend
from engine.download import DownloadProgress
from engine.types import EngineError

log = logging.getLogger("atelier.scheduler")

JobListener = Callable[[Job, JobEvent], Awaitable[None]]

# Seconds between looks at the engine's capacity while work waits (replicas come back).
CAPACITY_POLL = 1.0


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
        self._admission = Admission(
            config,
            store,
            self.limits,
            busy=lambda: len(self._queue) + len(self._running_jobs()),
            jobs_of=self.jobs_of,
            first_done_in=self._first_done_in,
            enqueue=self._queue.push,
        )
        self._painter = Painter(
            config, store, engine, self.events, self._queue, self._positions, self._speed
        )
        self._current_model = config.engine.default_model
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        # Model switches waiting for the engine to be idle; no batch starts meanwhile.
        self._holds = 0
        self._draining = False
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
                await self._painter.finish(job, JobStatus.FAILED, Failed(STOPPED_TWICE))
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
        save: SaveJobs | None = None,
    ) -> list[Job]:
        """Queue several jobs asked for at once (a /plot's cells), or none of them.

        The limits see them together: the quota counts all their pictures, the queue
        all the jobs, the per-minute rate one request. `save` writes the new jobs in
        one commit (the plot with its cells); by default each is added on its own.
        """
        if self._draining:
            raise Refused(RESTARTING, 60.0)
        jobs = await self._admission.admit(caller, work, save=save)
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
        await self._painter.finish(job, JobStatus.CANCELLED, Cancelled(by_admin=by_admin))
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
        batch = choose_batch(
            self._queue,
            current_model=self._current_model,
            loaded=self.engine.loaded_models(),
            batch_limit=self.config.engine.batch_limit,
            model_switch_wait=self.config.engine.model_switch_wait,
        )
        self._running[batch.id] = batch
        self._positions.announce_soon()
        return batch

    async def _run(self, batch: RunningBatch) -> None:
        """Paint one batch, then make room for the next."""
        try:
            await self._painter.run(batch)
        finally:
            self._running.pop(batch.id, None)
            self._batches.pop(batch.id, None)
            if not self._running:
                self._idle.set()
            self._wakeup.set()

    # -- announcements -----------------------------------------------------------

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
        return model_of(job, self._current_model)
