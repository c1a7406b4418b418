"""Choosing the next batch: the next job, taken fairly, with the waiting jobs that can
share its pipeline call (same model, same `ImageSpec.batch_key()`), up to
`[engine] max_batch` pictures.

A job whose model is not loaded may let a job of a loaded model go first, so the
engine does not switch models back and forth — for `model_switch_wait` seconds at most.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from bot.jobs.eta import RunningBatch, work_units
from bot.jobs.fair_queue import FairQueue
from bot.jobs.pictures import batch_key
from bot.records import Job


def model_of(job: Job, current_model: str) -> str:
    """The model `job` runs on: the one it named, else the current one."""
    request = job.request
    return request.model if request.model_given and request.model else current_model


def choose_batch(
    queue: FairQueue,
    *,
    current_model: str,
    loaded: set[str],
    batch_limit: int,
    model_switch_wait: float,
) -> RunningBatch:
    """Take the next batch out of `queue`, which must not be empty."""

    def model(job: Job) -> str:
        return model_of(job, current_model)

    def fits_with(first: Job, other: Job) -> bool:
        return model(other) == model(first) and batch_key(other.request) == batch_key(first.request)

    jobs = queue.take_batch(
        fits_with,
        lambda job: job.request.count,
        batch_limit,
        first=_passing_over(queue, model, loaded, model_switch_wait),
    )
    batch_model = model(jobs[0])
    for job in jobs:
        if job.request.model != batch_model:
            # An admin's switch moved it: the caption and the store say so too.
            job.request = dataclasses.replace(job.request, model=batch_model)
    return RunningBatch(
        id=jobs[0].id,
        jobs=jobs,
        model=batch_model,
        work=sum(work_units(job.request) for job in jobs),
    )


def _passing_over(
    queue: FairQueue, model: Callable[[Job], str], loaded: set[str], model_switch_wait: float
) -> Job | None:
    """A waiting job of a loaded model to serve before the next one, whose model is
    not loaded — unless that one has waited `model_switch_wait` already."""
    order = queue.order()
    head = next(order)
    if not loaded or model(head) in loaded:
        return None
    if time.time() - head.created_at >= model_switch_wait:
        return None
    return next((job for job in order if model(job) in loaded), None)
