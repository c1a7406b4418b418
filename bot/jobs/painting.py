"""Painting one batch: the engine call, its progress, the pictures saved, and every
job of the batch ended in a state its owner hears of — retried once, or failed with
a message — whatever goes wrong.

A job's final state and the message it owes its owner are saved together (the
store's outbox); the delivery layer sends that message and marks it delivered.
"""

from __future__ import annotations

import logging
import time

from bot.config import Config
from bot.jobs.eta import RunningBatch, Speed
from bot.jobs.events import Cancelled, EventHub, Failed, Finished, Started
from bot.jobs.fair_queue import FairQueue
from bot.jobs.pictures import BatchSpecs, batch_specs, save_pictures
from bot.jobs.positions import Positions
from bot.records import Job, JobStatus, OutboxEntry
from bot.store import Store
from engine.backend import EngineBackend
from engine.types import EngineCrashed, EngineError, GeneratedImage, GenerationCancelled

# The scheduler's logger: these lines were always the scheduler's.
log = logging.getLogger("atelier.scheduler")

# A job gets this many tries (engine crash, bot killed mid-job) before it fails.
MAX_ATTEMPTS = 2

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


class Painter:
    """Runs batches on the engine and ends their jobs; a job to try again goes back to
    the front of `queue`."""

    def __init__(
        self,
        config: Config,
        store: Store,
        engine: EngineBackend,
        events: EventHub,
        queue: FairQueue,
        positions: Positions,
        speed: Speed,
    ) -> None:
        self.config = config
        self.store = store
        self.engine = engine
        self.events = events
        self._queue = queue
        self._positions = positions
        self._speed = speed

    async def run(self, batch: RunningBatch) -> None:
        """Run one batch; whatever fails, its jobs end in a state their owners hear of."""
        try:
            await self._paint(batch)
        except Exception:
            log.exception("batch %s failed", batch.id)
            for job in batch.unfinished():
                try:
                    await self.finish(job, JobStatus.FAILED, Failed(UNEXPECTED))
                except Exception:
                    # The store itself fails: the job stays running in it, and is
                    # retried after the next start.
                    log.exception("job %s: the failure could not be saved", job.id)

    async def finish(
        self, job: Job, status: JobStatus, event: Finished | Failed | Cancelled
    ) -> None:
        """Save the job's end and the message it owes, then announce it."""
        job.status, job.finished_at = status, time.time()
        job.error = event.message if isinstance(event, Failed) else None
        await self.store.finish_job(job, outbox_entry(job.id, event))
        self.events.emit(job, event)
        self.events.forget(job.id)

    async def _paint(self, batch: RunningBatch) -> None:
        work = await batch_specs(batch.jobs, self.config.data_dir)
        for job in work.missing:
            log.warning("job %s: input %s is missing", job.id, job.request.init_image)
            await self.finish(job, JobStatus.FAILED, Failed(INPUT_MISSING))
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
                await self.finish(job, JobStatus.CANCELLED, Cancelled())
            return
        except EngineCrashed as exc:
            log.warning("engine crashed on batch %s: %s", batch.id, exc)
            await self._retry_or_fail(batch.unfinished(), CRASHED_TWICE)
            return
        except EngineError as exc:
            for job in batch.unfinished():
                await self.finish(job, JobStatus.FAILED, Failed(str(exc)))
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
                await self.finish(job, JobStatus.FAILED, Failed(NOT_SAVED))
                continue
            if job.status.finished:  # cancelled while the files were written
                continue
            if not saved:
                await self.finish(job, JobStatus.FAILED, Failed(BLOCKED))
                continue
            job.images = saved
            await self.finish(job, JobStatus.DELIVERING, Finished(list(saved)))

    async def _retry_or_fail(self, jobs: list[Job], message: str) -> None:
        for job in reversed(jobs):  # pushed to the front one by one: keep their order
            if job.attempts >= MAX_ATTEMPTS:
                await self.finish(job, JobStatus.FAILED, Failed(message))
                continue
            job.status, job.started_at = JobStatus.QUEUED, None
            await self.store.update_job(job)
            self._queue.push_front(job)
            position, eta = self._positions.place(job)
            self.events.queued(job, position, eta, force=True)
        self._positions.announce_soon()

    # -- progress ----------------------------------------------------------------

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


def outbox_entry(job_id: str, event: Finished | Failed | Cancelled) -> OutboxEntry:
    """The message a finished job owes its owner."""
    if isinstance(event, Finished):
        return OutboxEntry(job_id, "result")
    if isinstance(event, Failed):
        return OutboxEntry(job_id, "failed", event.message)
    return OutboxEntry(job_id, "cancelled", "by_admin" if event.by_admin else "")
