"""/inpaint through the command layer: an explicit mask (of any size) over a picture."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from bot.commands import inpaint
from bot.commands.base import JobAccepted, Reply

from .harness import Harness, Upload, png_bytes


def stripes(width: int, height: int) -> bytes:
    """A picture with detail everywhere, so any change to it shows."""
    xs = np.arange(width)[None, :].repeat(height, 0)
    ys = np.arange(height)[:, None].repeat(width, 1)
    rgb = np.stack([xs * 4 % 256, ys * 4 % 256, (xs * ys) % 256], axis=-1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(out, format="PNG")
    return out.getvalue()


def left_half_mask(width: int, height: int) -> bytes:
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, (0, 0, width // 2, height))
    out = io.BytesIO()
    mask.save(out, format="PNG")
    return out.getvalue()


async def test_inpaint_repaints_the_white_part_of_a_mask_of_another_size(
    harness: Harness,
) -> None:
    ctx = harness.user()
    picture = Upload(stripes(64, 64))
    mask = Upload(left_half_mask(32, 32), filename="mask.png")
    outcome = await inpaint.run(ctx, picture.as_input(), mask.as_input(), "a cat --steps 2")
    assert isinstance(outcome, JobAccepted), outcome
    job = await harness.finished(outcome.job.id)
    assert job.status.painted, job.error
    assert (job.request.kind, job.request.prompt, job.request.strength) == ("inpaint", "a cat", 0.9)
    data_dir = harness.services.config.data_dir
    with Image.open(data_dir / job.images[0].path) as image:
        after = np.asarray(image.convert("RGB"), dtype=np.int16)
    with Image.open(io.BytesIO(picture.data)) as image:
        before = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert after.shape == (64, 64, 3)
    assert np.abs(after[:, 34:] - before[:, 34:]).max() <= 2  # black on the mask: kept
    assert np.abs(after[:, :30] - before[:, :30]).mean() > 3  # white: repainted
    assert "a cat" in job.images[0].parameters


async def test_inpaint_refuses_an_all_black_mask_and_missing_attachments(
    harness: Harness,
) -> None:
    ctx = harness.user()
    black = Upload(png_bytes(64, 64, (0, 0, 0)))
    picture = Upload(stripes(64, 64))
    outcome = await inpaint.run(ctx, picture.as_input(), black.as_input(), "a cat")
    assert isinstance(outcome, Reply) and outcome.error
    assert outcome.text == inpaint.NOTHING_TO_REPAINT

    no_mask = await inpaint.run(ctx, picture.as_input(), None, "a cat")
    assert isinstance(no_mask, Reply) and no_mask.text == inpaint.NO_MASK
    nothing = await inpaint.run(ctx, None, None, "")
    assert isinstance(nothing, Reply) and nothing.text == inpaint.NO_PICTURE

    # A typo in an option costs no download.
    fresh = Upload(stripes(64, 64))
    typo = await inpaint.run(ctx, fresh.as_input(), black.as_input(), "a cat --stpes 2")
    assert isinstance(typo, Reply) and "Unknown option --stpes" in typo.text
    assert fresh.downloads == 0
    assert await harness.jobs_of(ctx) == []
