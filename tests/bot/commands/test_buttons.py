"""Result buttons end to end: re-roll, vary, upscale, PNG, delete, and stale data."""

from __future__ import annotations

import os
import shutil
import time

import pytest
from PIL import Image

from bot.commands import buttons, imagine
from bot.commands.base import Context, DeleteResult, JobAccepted, Reply, SendFile
from bot.records import Job, JobStatus
from bot.store import new_job_id

from .harness import Harness


async def finished_job(harness: Harness, ctx: Context, text: str) -> Job:
    outcome = await imagine.run(ctx, text)
    assert isinstance(outcome, JobAccepted), outcome
    job = await harness.finished(outcome.job.id)
    assert job.status.painted, job.error
    return job


async def test_reroll_keeps_the_request_with_a_new_seed(harness: Harness) -> None:
    owner = harness.user()
    job = await finished_job(harness, owner, "a red fox --seed 5 --n 2 --steps 2 --no text")
    presser = harness.user("bob")
    outcome = await buttons.run(presser, buttons.encode("reroll", job.id))
    assert isinstance(outcome, JobAccepted), outcome
    new = outcome.job.request
    assert new.seed != 5 and new.count == 2
    assert (new.prompt, new.negative, new.steps, new.kind) == ("a red fox", "text", 2, "imagine")
    assert new.parent_job == job.id
    assert outcome.job.user_key == presser.caller.key
    await harness.drop(outcome)


async def test_vary_and_upscale_start_from_the_result(harness: Harness) -> None:
    ctx = harness.user()
    job = await finished_job(harness, ctx, "a blue hat --n 2 --steps 2 --size 128x64")
    assert (job.request.width, job.request.height) == (128, 64)

    varied = await buttons.run(ctx, buttons.encode("vary", job.id, 1))
    assert isinstance(varied, JobAccepted), varied
    request = varied.job.request
    assert request.init_image == job.images[1].path
    assert (request.kind, request.strength, request.count) == ("vary", 0.6, 1)
    assert (request.width, request.height, request.parent_index) == (128, 64, 1)
    await harness.drop(varied)

    upscaled = await buttons.run(ctx, buttons.encode("upscale", job.id, 0))
    assert isinstance(upscaled, JobAccepted), upscaled
    request = upscaled.job.request
    assert (request.kind, request.strength, request.count) == ("upscale", 0.3, 1)
    assert (request.width, request.height, request.upscale) == (256, 128, 2)
    assert request.seed == job.images[0].seed
    done = await harness.finished(upscaled.job.id)
    assert done.status.painted, done.error
    with Image.open(harness.services.config.data_dir / done.images[0].path) as picture:
        assert picture.size == (256, 128)
        # No [upscale] model here: Lanczos, then the detail pass, as A1111 writes it.
        assert picture.info["parameters"].endswith(
            "Denoising strength: 0.3, Hires upscale: 2, Hires upscaler: Lanczos"
        )

    again = await buttons.run(ctx, buttons.encode("reroll", upscaled.job.id))
    assert isinstance(again, JobAccepted), again
    rerolled = again.job.request
    assert (rerolled.kind, rerolled.upscale, rerolled.strength) == ("upscale", 2, 0.3)
    assert (rerolled.init_image, rerolled.width) == (request.init_image, 256)
    await harness.drop(again)


async def test_upscale_fits_the_size_limit_then_refuses(harness: Harness) -> None:
    ctx = harness.user()
    # max_side is 256: twice 192x64 would be 384 wide; the largest fit keeps the shape.
    job = await finished_job(harness, ctx, "a long boat --size 192x64 --steps 1")
    outcome = await buttons.run(ctx, buttons.encode("upscale", job.id, 0))
    assert isinstance(outcome, JobAccepted), outcome
    assert (outcome.job.request.width, outcome.job.request.height) == (256, 64)
    assert outcome.job.request.upscale == 1.33
    await harness.drop(outcome)

    # Already 256 wide: the largest size that fits is the size it has.
    big = await finished_job(harness, ctx, "a wall --size 256x64 --steps 1")
    outcome = await buttons.run(ctx, buttons.encode("upscale", big.id, 0))
    assert isinstance(outcome, Reply) and outcome.error
    assert (
        outcome.text == "That picture is already as large as this bot makes them (256 px a side)."
    )


async def test_png_sends_the_original_file(harness: Harness) -> None:
    ctx = harness.user()
    job = await finished_job(harness, ctx, "a cat --steps 1")
    outcome = await buttons.run(harness.user("someone else"), buttons.encode("png", job.id, 0))
    assert isinstance(outcome, SendFile)
    assert outcome.path == harness.services.config.data_dir / job.images[0].path
    assert outcome.filename.endswith(".png")
    with Image.open(outcome.path) as picture:
        assert "Seed:" in picture.text["parameters"]


async def test_delete_is_for_the_owner_and_admins(harness: Harness) -> None:
    owner = harness.user()
    job = await finished_job(harness, owner, "a dog --steps 1")
    data = buttons.encode("delete", job.id)
    stranger = await buttons.run(harness.user("eve"), data)
    assert isinstance(stranger, Reply) and stranger.error
    assert "Only the person who asked for it" in stranger.text
    assert await buttons.run(owner, data) == DeleteResult(job.id)
    assert await buttons.run(harness.admin(), data) == DeleteResult(job.id)


async def test_buttons_work_for_jobs_from_an_earlier_run(harness: Harness) -> None:
    """After a restart all a button has is the store and the data folder."""
    ctx = harness.user()
    job = await finished_job(harness, ctx, "a fox --steps 1")
    data_dir = harness.services.config.data_dir
    old = Job(
        id=new_job_id(),
        platform=job.platform,
        user_id=job.user_id,
        user_name=job.user_name,
        request=job.request,
        status=JobStatus.DONE,
        created_at=1.0,
    )
    old.images = [type(job.images[0])(f"images/{old.id}-1.png", 77, "old parameters")]
    shutil.copy(data_dir / job.images[0].path, data_dir / old.images[0].path)
    await harness.services.store.add_job(old)
    await harness.services.store.update_job(old)
    outcome = await buttons.run(ctx, buttons.encode("vary", old.id, 0))
    assert isinstance(outcome, JobAccepted), outcome
    assert outcome.job.request.init_image == old.images[0].path
    await harness.drop(outcome)
    assert isinstance(await buttons.run(ctx, buttons.encode("png", old.id, 0)), SendFile)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("garbage", buttons.INVALID),
        ("v:abc:x", buttons.INVALID),
        ("", buttons.INVALID),
        ("r:nosuchjob", "That picture is no longer available."),
    ],
)
async def test_stale_or_malformed_data(harness: Harness, data: str, message: str) -> None:
    ctx = harness.user()
    assert await buttons.run(ctx, data) == Reply(message, error=True)
    assert await harness.jobs_of(ctx) == []


async def test_index_past_the_pictures_is_refused(harness: Harness) -> None:
    ctx = harness.user()
    job = await finished_job(harness, ctx, "a hat --steps 1")
    outcome = await buttons.run(ctx, buttons.encode("vary", job.id, 3))
    assert outcome == Reply(buttons.INVALID, error=True)
    assert [j.id for j in await harness.jobs_of(ctx)] == [job.id]


async def test_an_expired_picture_is_a_clear_refusal_and_queues_nothing(harness: Harness) -> None:
    ctx = harness.user()
    job = await finished_job(harness, ctx, "a boat --steps 1")
    other = await finished_job(harness, ctx, "a kite --steps 1")
    path = harness.services.config.data_dir / job.images[0].path
    month_ago = time.time() - 31 * 86400
    os.utime(path, (month_ago, month_ago))
    assert harness.services.retention is not None
    assert await harness.services.retention.prune_now() == 1
    assert not path.exists()
    assert (harness.services.config.data_dir / other.images[0].path).exists()

    for action in ("vary", "upscale", "png"):
        outcome = await buttons.run(ctx, buttons.encode(action, job.id, 0))
        assert outcome == Reply(
            "This picture has expired (pictures are kept for 30 days).", error=True
        )
    assert len(await harness.jobs_of(ctx)) == 2
