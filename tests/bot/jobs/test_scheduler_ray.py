"""The real scheduler in front of two Ray replicas: batches run side by side, and a
replica killed mid-batch loses nothing and repeats nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.jobs.events import Finished, Started
from tests.bot.jobs.scheduler_harness import ANN, BOB, CAT, Bot, Recorder, make_config, request
from tests.engine.backends import Backend, started


@pytest.fixture(scope="module")
async def backend(request: pytest.FixtureRequest, tiny_model_dir: Path) -> AsyncIterator[Backend]:
    async with started("ray", request, {"tiny": str(tiny_model_dir)}) as backend:
        yield backend


@pytest.fixture
async def bot(tmp_path: Path, tiny_model_dir: Path, backend: Backend) -> AsyncIterator[Bot]:
    config = make_config(tmp_path / "data", tiny_model_dir, max_batch=1)
    # One model only: the second name the harness configures is not on the replicas.
    config = dataclasses.replace(config, models={"tiny": config.models["tiny"]})
    made = Bot(config, backend.client, Recorder())  # type: ignore[arg-type]
    yield made
    await made.close()


async def test_two_replicas_paint_two_batches_at_once(bot: Bot) -> None:
    scheduler = await bot.open()
    assert bot.engine.capacity == 2
    slow = [await scheduler.submit(who, request(steps=60), {}) for who in (ANN, BOB)]
    await bot.recorder.until_ended(*(job.id for job in slow))
    first, second = (bot.recorder.arrivals(job.id, Started)[0] for job in slow)
    ends = [bot.recorder.arrivals(job.id, Finished)[0] for job in slow]
    # The second started before the first finished: they ran side by side.
    assert second < min(ends) and first < min(ends)


async def test_a_replica_killed_mid_batch_loses_nothing_and_repeats_nothing(
    bot: Bot, backend: Backend
) -> None:
    scheduler = await bot.open()
    doomed = await scheduler.submit(ANN, request(steps=400), {})
    others = [await scheduler.submit(who, request(steps=2), {}) for who in (BOB, CAT, BOB)]
    await bot.recorder.until_progress(doomed.id)
    await backend.kill(await backend.engine_of(doomed.id))
    everyone = [doomed, *others]
    await bot.recorder.until_ended(*(job.id for job in everyone), timeout=240)
    for job in everyone:
        assert bot.recorder.count(job.id, Finished) == 1, job.id
    # Painted twice (the first try died with its replica), delivered once.
    assert bot.recorder.count(doomed.id, Started) == 2
