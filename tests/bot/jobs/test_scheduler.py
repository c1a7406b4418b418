"""The scheduler against the real engine process on the tiny model, with real SQLite.

One engine process serves the whole module (starting one costs seconds); every test
gets its own data folder, store and scheduler.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image
from tiny_model import build_tiny_safety_checker

from bot.config import LimitsConfig
from bot.jobs.admission import Refused
from bot.jobs.events import Cancelled, Failed, Finished, Progress, Queued, Started
from bot.jobs.limits import BUSY_MESSAGE, Limits, seconds_until_tomorrow
from bot.jobs.painting import BLOCKED, CRASHED_TWICE, INPUT_MISSING, STOPPED_TWICE
from bot.records import JobStatus
from engine.client import EngineClient
from tests.bot.jobs.scheduler_harness import (
    ADMIN,
    ANN,
    BOB,
    CAT,
    Bot,
    Recorder,
    make_config,
    request,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
async def engine(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    config = make_config(tmp_path_factory.mktemp("engine") / "data", tiny_model_dir)
    client = EngineClient(config.engine_settings(), max_batch=4)
    await client.start()
    yield client
    await client.close()


@pytest.fixture
async def bot(tmp_path: Path, tiny_model_dir: Path, engine: EngineClient) -> AsyncIterator[Bot]:
    made = Bot(make_config(tmp_path / "data", tiny_model_dir), engine, Recorder())
    yield made
    await made.close()


def configure(bot: Bot, **changes: object) -> None:
    """Change the config before the bot opens."""
    limits = changes.pop("limits", None)
    if limits is not None:
        changes["limits"] = limits
    engine = {k: changes.pop(k) for k in ("max_batch",) if k in changes}
    config = dataclasses.replace(bot.config, **changes)
    if engine:
        config = dataclasses.replace(config, engine=dataclasses.replace(config.engine, **engine))
    bot.config = config


async def test_a_job_is_queued_painted_saved_and_delivered(bot: Bot) -> None:
    scheduler = await bot.open()
    job = await scheduler.submit(ANN, request(count=2, seed=41), {"chat_id": 5})
    await bot.recorder.until_ended(job.id)

    events = bot.recorder.of(job.id)
    assert isinstance(events[0], Queued) and events[0].position == 1
    assert isinstance(events[1], Started)
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress and progress[-1].step == progress[-1].total
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert [image.seed for image in finished.images] == [41, 42]
    for n, image in enumerate(finished.images, start=1):
        assert image.path == f"images/{job.id}-{n}.png"
        png = Image.open(io.BytesIO((bot.config.data_dir / image.path).read_bytes()))
        assert png.size == (64, 64)
        assert f"Seed: {image.seed}" in png.info["parameters"]
        assert "Model: tiny" in image.parameters

    assert bot.store is not None
    saved = await bot.store.get_job(job.id)
    assert saved is not None
    assert saved.status is JobStatus.DELIVERING and saved.attempts == 1
    assert saved.images == finished.images
    assert saved.origin == {"chat_id": 5}
    assert scheduler.position(job.id) is None
    assert scheduler.jobs_of(ANN.key) == []


async def test_one_picture_is_served_before_anothers_ten(bot: Bot) -> None:
    configure(bot, max_batch=1)
    scheduler = await bot.open()
    ann_jobs = [await scheduler.submit(ANN, request(f"a cat {n}"), {}) for n in range(10)]
    bob_job = await scheduler.submit(BOB, request("a dog"), {})
    await bot.recorder.wait(lambda: len(bot.recorder.started()) >= 2)

    assert bot.recorder.started()[:2] == [ann_jobs[0].id, bob_job.id]
    assert [j.id for j in scheduler.jobs_of(ANN.key)][-8:] == [j.id for j in ann_jobs[2:]]


async def test_compatible_jobs_share_a_batch_others_wait(bot: Bot) -> None:
    scheduler = await bot.open(start=False)
    ann = await scheduler.submit(ANN, request("a cat"), {})
    bob = await scheduler.submit(BOB, request("a dog", count=2), {})
    other_steps = await scheduler.submit(CAT, request("a fox", steps=3), {})
    too_many = await scheduler.submit(CAT, request("a red hat", count=2), {})
    await scheduler.start()
    everyone = (ann.id, bob.id, other_steps.id, too_many.id)
    await bot.recorder.until_ended(*everyone)

    def when(job_id: str, kind: type) -> int:
        return next(
            i
            for i, (jid, e) in enumerate(bot.recorder.events)
            if jid == job_id and isinstance(e, kind)
        )

    # Ann's and Bob's jobs started together and finished together: one engine call.
    assert when(bob.id, Started) < when(ann.id, Finished)
    # The others could not join: different steps, or no room left.
    for job_id in (other_steps.id, too_many.id):
        assert when(job_id, Started) > when(ann.id, Finished)
        assert when(job_id, Started) > when(bob.id, Finished)
    for job_id in everyone:
        assert isinstance(bot.recorder.ending(job_id), Finished)
    bob_done = bot.recorder.ending(bob.id)
    assert isinstance(bob_done, Finished) and len(bob_done.images) == 2


async def test_img2img_jobs_with_different_pictures_run_together(bot: Bot) -> None:
    inputs = bot.config.data_dir / "inputs"
    inputs.mkdir(parents=True)
    for name, colour in (("red", (200, 0, 0)), ("blue", (0, 0, 200))):
        Image.new("RGB", (64, 64), colour).save(inputs / f"{name}.png")
    scheduler = await bot.open(start=False)
    vary = dict(kind="vary", strength=0.6)
    red = await scheduler.submit(ANN, request(init_image="inputs/red.png", **vary), {})
    blue = await scheduler.submit(BOB, request(init_image="inputs/blue.png", **vary), {})
    gone = await scheduler.submit(CAT, request(init_image="inputs/gone.png", **vary), {})
    await scheduler.start()
    await bot.recorder.until_ended(red.id, blue.id, gone.id)

    assert isinstance(bot.recorder.ending(red.id), Finished)
    assert isinstance(bot.recorder.ending(blue.id), Finished)
    assert bot.recorder.ending(gone.id) == Failed(INPUT_MISSING)
    assert bot.recorder.started()[:2] == [red.id, blue.id]


async def test_per_minute_limit_refuses_with_retry_after_and_audits(bot: Bot) -> None:
    clock = FakeClock()
    configure(bot, limits=LimitsConfig(jobs_per_minute=2, max_queued_per_user=10))
    bot.limits = Limits(bot.config.limits, clock=clock)
    scheduler = await bot.open(start=False)
    await scheduler.submit(ANN, request(), {})
    await scheduler.submit(ANN, request(), {})
    with pytest.raises(Refused) as refused:
        await scheduler.submit(ANN, request(), {})
    assert refused.value.retry_after == pytest.approx(30.0)
    assert str(refused.value).endswith("You can queue another picture in 30 s.")
    assert len(scheduler.jobs_of(ANN.key)) == 2

    await scheduler.submit(BOB, request(), {})  # others are not slowed down
    await scheduler.submit(ADMIN, request(), {})
    await scheduler.submit(ADMIN, request(), {})
    await scheduler.submit(ADMIN, request(), {})  # admins are not limited
    clock.now += 30
    await scheduler.submit(ANN, request(), {})

    assert bot.store is not None
    (entry,) = await bot.store.recent_audit()
    assert (entry.actor, entry.action) == (ANN.key, "refused")
    assert "30 s" in entry.detail


async def test_queued_jobs_per_user_cap_counts_the_running_one(bot: Bot) -> None:
    configure(bot, limits=LimitsConfig(jobs_per_minute=100, max_queued_per_user=2))
    scheduler = await bot.open()
    running = await scheduler.submit(ANN, request(steps=1000), {})
    await bot.recorder.until_progress(running.id)
    await scheduler.submit(ANN, request(), {})
    with pytest.raises(Refused) as refused:
        await scheduler.submit(ANN, request(), {})
    assert "You already have 2 jobs in the queue (the limit is 2)" in str(refused.value)
    assert refused.value.retry_after is not None and refused.value.retry_after > 0
    await scheduler.submit(ADMIN, request(), {})
    await scheduler.submit(ADMIN, request(), {})
    await scheduler.submit(ADMIN, request(), {})
    assert await scheduler.cancel(running.id, ANN)


async def test_a_full_queue_is_busy_even_for_admins(bot: Bot) -> None:
    configure(bot, limits=LimitsConfig(jobs_per_minute=100, max_queue=2))
    scheduler = await bot.open(start=False)
    await scheduler.submit(ANN, request(), {})
    await scheduler.submit(BOB, request(), {})
    for caller in (CAT, ADMIN):
        with pytest.raises(Refused) as refused:
            await scheduler.submit(caller, request(), {})
        assert str(refused.value) == BUSY_MESSAGE
        assert refused.value.retry_after == 60.0


async def test_banned_users_are_refused_and_nothing_is_queued(bot: Bot) -> None:
    scheduler = await bot.open(start=False)
    assert bot.store is not None
    await bot.store.ban(BOB.key, by=ADMIN.key, reason="spam")
    with pytest.raises(Refused, match="banned") as refused:
        await scheduler.submit(BOB, request(), {})
    assert refused.value.retry_after is None
    assert scheduler.jobs_of(BOB.key) == []
    assert await bot.store.jobs_with_status(JobStatus.QUEUED) == []
    await scheduler.submit(ANN, request(), {})


async def test_daily_quota_survives_a_restart(bot: Bot) -> None:
    configure(bot, limits=LimitsConfig(jobs_per_minute=100, daily_quota=3))
    scheduler = await bot.open(start=False)
    await scheduler.submit(ANN, request(count=2), {})
    with pytest.raises(Refused, match="1 of your 3 daily pictures left"):
        await scheduler.submit(ANN, request(count=2), {})
    await scheduler.submit(ANN, request(count=1), {})

    scheduler = await bot.restart()
    await scheduler.stop()  # keep the jobs waiting: they still count
    with pytest.raises(Refused) as refused:
        await scheduler.submit(ANN, request(), {})
    assert "You have made your 3 pictures for today" in str(refused.value)
    assert refused.value.retry_after == pytest.approx(seconds_until_tomorrow(time.time()), abs=5)
    await scheduler.submit(BOB, request(), {})
    await scheduler.submit(ADMIN, request(count=4), {})


async def test_cancel_a_waiting_job(bot: Bot) -> None:
    scheduler = await bot.open(start=False)
    first = await scheduler.submit(ANN, request(), {})
    second = await scheduler.submit(BOB, request(), {})
    third = await scheduler.submit(CAT, request(), {})

    with pytest.raises(Refused, match="only cancel your own"):
        await scheduler.cancel(first.id, BOB)
    assert await scheduler.cancel(first.id, ANN)
    assert await scheduler.cancel(second.id, ADMIN)
    assert not await scheduler.cancel(first.id, ANN)
    assert not await scheduler.cancel("nosuchjob0", ADMIN)
    await bot.recorder.until_ended(first.id, second.id)
    assert bot.recorder.ending(first.id) == Cancelled(by_admin=False)
    assert bot.recorder.ending(second.id) == Cancelled(by_admin=True)
    assert scheduler.position(third.id) == (1, pytest.approx(scheduler.position(third.id)[1]))

    assert bot.store is not None
    saved = await bot.store.get_job(first.id)
    assert saved is not None and saved.status is JobStatus.CANCELLED
    assert any(
        e.action == "cancel" and second.id in e.detail for e in await bot.store.recent_audit()
    )

    await scheduler.start()
    await bot.recorder.until_ended(third.id)
    assert bot.recorder.started() == [third.id]


async def test_cancel_a_running_job_and_progress_is_throttled(bot: Bot) -> None:
    scheduler = await bot.open()
    long_job = await scheduler.submit(ANN, request(steps=1000), {})
    after = await scheduler.submit(BOB, request(), {})
    await bot.recorder.until_progress(long_job.id, times=2)
    assert scheduler.position(long_job.id)[0] == 0  # type: ignore[index]
    assert await scheduler.cancel(long_job.id, ANN)
    await bot.recorder.until_ended(long_job.id, after.id)

    assert bot.recorder.ending(long_job.id) == Cancelled()
    assert isinstance(bot.recorder.ending(after.id), Finished)
    progress = [e for e in bot.recorder.of(long_job.id) if isinstance(e, Progress)]
    steps = [e.step for e in progress]
    assert steps == sorted(steps) and progress[0].total == 1000
    # At most one Progress every ~2 s, however fast the steps go.
    arrivals = bot.recorder.arrivals(long_job.id, Progress)
    assert all(later - earlier > 1.5 for earlier, later in itertools.pairwise(arrivals))
    assert bot.store is not None
    saved = await bot.store.get_job(long_job.id)
    assert saved is not None and saved.status is JobStatus.CANCELLED and saved.images == []


async def test_restart_mid_queue_finishes_every_job_exactly_once(bot: Bot) -> None:
    configure(bot, max_batch=1)
    scheduler = await bot.open()
    jobs = [
        await scheduler.submit(caller, request(f"a cat {n}"), {})
        for n in range(3)
        for caller in (ANN, BOB)
    ]
    await bot.recorder.wait(lambda: any(bot.recorder.ending(j.id) for j in jobs))
    await bot.close()

    await bot.open()
    await bot.recorder.until_ended(*(j.id for j in jobs))
    for job in jobs:
        assert bot.recorder.count(job.id, Finished) == 1
        assert bot.recorder.count(job.id, Failed) == 0
    assert bot.store is not None
    done = await bot.store.jobs_with_status(JobStatus.DELIVERING)
    assert {j.id for j in done} == {j.id for j in jobs}
    assert all(j.attempts == 1 for j in done)


async def test_a_job_left_running_is_retried_once_then_failed(bot: Bot) -> None:
    scheduler = await bot.open(start=False)
    once = await scheduler.submit(ANN, request(), {"chat_id": 1})
    twice = await scheduler.submit(BOB, request(), {"chat_id": 2})
    assert bot.store is not None
    # What a bot killed mid-job leaves behind.
    for job, attempts in ((once, 1), (twice, 2)):
        job.status, job.attempts, job.started_at = JobStatus.RUNNING, attempts, time.time()
        await bot.store.update_job(job)
    await bot.close()

    await bot.open()
    await bot.recorder.until_ended(once.id, twice.id)
    assert isinstance(bot.recorder.ending(once.id), Finished)
    assert bot.recorder.ending(twice.id) == Failed(STOPPED_TWICE)
    saved = await bot.store.get_job(twice.id)
    assert saved is not None and saved.status is JobStatus.FAILED
    assert saved.error == STOPPED_TWICE and saved.origin == {"chat_id": 2}
    saved = await bot.store.get_job(once.id)
    assert saved is not None and saved.status is JobStatus.DELIVERING and saved.attempts == 2


async def test_engine_killed_mid_job_is_retried_once_and_the_queue_goes_on(
    bot: Bot, engine: EngineClient
) -> None:
    scheduler = await bot.open()
    doomed = await scheduler.submit(ANN, request(steps=1000), {})
    after = await scheduler.submit(BOB, request(), {})

    for round_ in (1, 2):
        await bot.recorder.wait(lambda r=round_: bot.recorder.count(doomed.id, Started) == r)
        await bot.recorder.until_progress(doomed.id, times=round_)
        health = await engine.health()
        os.kill(int(health["pid"]), signal.SIGKILL)  # type: ignore[arg-type]
    await bot.recorder.until_ended(doomed.id, after.id)

    assert bot.recorder.ending(doomed.id) == Failed(CRASHED_TWICE)
    assert bot.recorder.count(doomed.id, Started) == 2
    assert isinstance(bot.recorder.ending(after.id), Finished)
    assert bot.store is not None
    saved = await bot.store.get_job(doomed.id)
    assert saved is not None and saved.status is JobStatus.FAILED and saved.attempts == 2


async def test_an_engine_error_fails_only_that_job(bot: Bot) -> None:
    scheduler = await bot.open()
    broken = await scheduler.submit(ANN, request(sampler="No Such Sampler"), {})
    fine = await scheduler.submit(BOB, request(), {})
    await bot.recorder.until_ended(broken.id, fine.id)
    failed = bot.recorder.ending(broken.id)
    assert isinstance(failed, Failed) and "No Such Sampler" in failed.message
    assert isinstance(bot.recorder.ending(fine.id), Finished)


async def test_model_switch_persists_across_a_restart(bot: Bot) -> None:
    scheduler = await bot.open()
    assert scheduler.current_model == "tiny"
    with pytest.raises(Refused, match="no model called 'huge'"):
        await scheduler.switch_model("huge", by=ADMIN.key)
    assert await scheduler.switch_model("tiny2", by=ADMIN.key) == "tiny2"
    assert scheduler.current_model == "tiny2"

    scheduler = await bot.restart()
    assert scheduler.current_model == "tiny2"
    # A job for the current model and one naming another: same settings, but two
    # engine calls, one per model.
    current = await scheduler.submit(ANN, request(model=""), {})
    other = await scheduler.submit(BOB, request(model="tiny", model_given=True), {})
    await bot.recorder.until_ended(current.id, other.id)
    finished = bot.recorder.ending(current.id)
    assert isinstance(finished, Finished) and "Model: tiny2" in finished.images[0].parameters
    finished = bot.recorder.ending(other.id)
    assert isinstance(finished, Finished) and "Model: tiny" in finished.images[0].parameters
    assert bot.recorder.started() == [current.id, other.id]
    current_end = bot.recorder.arrivals(current.id, Finished)[0]
    assert bot.recorder.arrivals(other.id, Started)[0] > current_end
    assert scheduler.current_model == "tiny2"
    assert bot.store is not None
    assert any(
        (e.actor, e.action, e.detail) == (ADMIN.key, "switch_model", "tiny2")
        for e in await bot.store.recent_audit()
    )


async def test_positions_and_etas_follow_the_queue(bot: Bot) -> None:
    scheduler = await bot.open(start=False)
    ann_1 = await scheduler.submit(ANN, request(), {})
    ann_2 = await scheduler.submit(ANN, request(), {})
    bob_1 = await scheduler.submit(BOB, request(), {})
    big = await scheduler.submit(CAT, request(steps=8, count=4), {})

    places = {j.id: scheduler.position(j.id) for j in (ann_1, bob_1, big, ann_2)}
    assert [place[0] for place in places.values()] == [1, 2, 3, 4]  # type: ignore[index]
    etas = [place[1] for place in places.values()]  # type: ignore[index]
    assert all(eta is not None and eta > 0 for eta in etas)
    assert etas[0] < etas[1] < etas[2] < etas[3]
    # Cat's 4 pictures of 8 steps are 16 times the work of one of 2 steps.
    assert etas[2] - etas[1] == pytest.approx(16 * etas[0])
    assert etas[3] - etas[2] == pytest.approx(etas[0])
    assert scheduler.position("nosuchjob0") is None
    assert bot.recorder.of(bob_1.id)[0] == Queued(2, places[bob_1.id][1])  # type: ignore[index]

    # Ann cancels her first job: her second takes its turn, and she is told so
    # (throttled: a few seconds after the last update).
    assert await scheduler.cancel(ann_1.id, ANN)
    await bot.recorder.wait(lambda: bot.recorder.of(ann_2.id)[-1] == Queued(1, etas[0]))
    assert scheduler.position(bob_1.id) == (2, etas[1])


async def test_etas_follow_the_measured_speed(bot: Bot) -> None:
    configure(bot, max_batch=1)
    scheduler = await bot.open(start=False)
    jobs = [await scheduler.submit(ANN, request(f"a cat {n}"), {}) for n in range(4)]
    first_guess = scheduler.position(jobs[0].id)[1]  # type: ignore[index]
    started = time.monotonic()
    await scheduler.start()
    await bot.recorder.until_ended(*(j.id for j in jobs))
    per_job = (time.monotonic() - started) / len(jobs)

    await scheduler.stop()
    waiting = await scheduler.submit(ANN, request(), {})
    eta = scheduler.position(waiting.id)[1]  # type: ignore[index]
    assert eta != first_guess
    # The moving average has moved towards what this machine really takes.
    assert abs(eta - per_job) < abs(first_guess - per_job)


async def test_a_failing_listener_does_not_stop_the_others(bot: Bot) -> None:
    scheduler = await bot.open(start=False)
    calls: list[str] = []

    async def broken(job, event) -> None:
        calls.append(type(event).__name__)
        raise RuntimeError("listener bug")

    scheduler.add_listener("telegram", broken)
    job = await scheduler.submit(ANN, request(), {})
    await scheduler.start()
    await bot.recorder.until_ended(job.id)
    assert isinstance(bot.recorder.ending(job.id), Finished)
    assert calls[0] == "Queued" and "Finished" in calls


async def test_events_wait_for_a_listener_added_later(bot: Bot) -> None:
    scheduler = await bot.open(start=False)
    job = await scheduler.submit(ANN, request(), {})
    await bot.close()
    # Restarted, with the adapters connecting only after the queue resumed.
    scheduler = await bot.open(listen=False)
    await scheduler.update_origin(job.id, {"chat_id": 77})
    late = Recorder()
    scheduler.add_listener("telegram", late)
    await late.until_ended(job.id)
    assert isinstance(late.of(job.id)[0], Queued)
    assert isinstance(late.ending(job.id), Finished)
    assert bot.store is not None
    saved = await bot.store.get_job(job.id)
    assert saved is not None and saved.origin == {"chat_id": 77}


@pytest.fixture(scope="module")
async def flagging_engine(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """An engine whose NSFW classifier flags every picture."""
    folder = tmp_path_factory.mktemp("flagging")
    checker = build_tiny_safety_checker(folder / "checker", flag_everything=True)
    config = make_config(folder / "data", tiny_model_dir, nsfw_classifier=str(checker))
    client = EngineClient(config.engine_settings(), max_batch=4)
    await client.start()
    yield client
    await client.close()


@pytest.mark.parametrize("action", ["block", "spoiler"])
async def test_flagged_pictures_are_blocked_or_hidden_behind_a_spoiler(
    action: str, tmp_path: Path, tiny_model_dir: Path, flagging_engine: EngineClient
) -> None:
    config = make_config(tmp_path / "data", tiny_model_dir, nsfw_action=action)
    bot = Bot(config, flagging_engine, Recorder())
    scheduler = await bot.open()
    try:
        job = await scheduler.submit(ANN, request(count=2), {})
        await bot.recorder.until_ended(job.id)
        assert bot.store is not None
        saved = await bot.store.get_job(job.id)
        assert saved is not None
        if action == "block":
            assert bot.recorder.ending(job.id) == Failed(BLOCKED)
            assert saved.status is JobStatus.FAILED and saved.images == []
            assert not (config.data_dir / "images").exists()
        else:
            finished = bot.recorder.ending(job.id)
            assert isinstance(finished, Finished) and len(finished.images) == 2
            assert all(image.flagged for image in finished.images)
            assert saved.status is JobStatus.DELIVERING and saved.images == finished.images
            assert all((config.data_dir / image.path).is_file() for image in saved.images)
    finally:
        await bot.close()
