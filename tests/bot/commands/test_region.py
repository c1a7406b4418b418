"""The editing loop through the command layer, on the tiny model: vary region, zoom
out and pan, with the painted pixels compared to the original's."""

from __future__ import annotations

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.commands import button_data, buttons, canvas, imagine, region, remix
from bot.commands.base import Context, JobAccepted, Reply
from bot.records import Job

from .harness import Harness


async def painted(harness: Harness, ctx: Context, text: str) -> Job:
    outcome = await imagine.run(ctx, text)
    assert isinstance(outcome, JobAccepted), outcome
    job = await harness.finished(outcome.job.id)
    assert job.status.painted, job.error
    return job


async def result_of(harness: Harness, outcome: object) -> tuple[Job, np.ndarray]:
    assert isinstance(outcome, JobAccepted), outcome
    job = await harness.finished(outcome.job.id)
    assert job.status.painted, job.error
    return job, picture(harness, job)


def picture(harness: Harness, job: Job, index: int = 0) -> np.ndarray:
    with Image.open(harness.services.config.data_dir / job.images[index].path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def labels(reply: Reply) -> list[list[str]]:
    return [[button.label for button in row] for row in reply.buttons]


def press(reply: Reply, label: str) -> str:
    return next(b.data for row in reply.buttons for b in row if b.label == label)


async def test_region_repaints_only_the_chosen_cells(harness: Harness) -> None:
    ctx = harness.user()
    job = await painted(harness, ctx, "a red fox --steps 2 --model tiny2 --seed 3")
    before = picture(harness, job)

    grid = await buttons.run(ctx, buttons.encode("region", job.id, 0))
    assert isinstance(grid, Reply) and not grid.error
    assert labels(grid)[0] == ["⬜ 1", "⬜ 2", "⬜ 3"]
    assert labels(grid)[3] == ["Repaint", "⬅️ Back", "✖️ Cancel"]
    assert all(len(row) <= 5 for row in grid.buttons) and len(grid.buttons) <= 5

    refused = await region.click(ctx, press(grid, "Repaint"))
    assert isinstance(refused, Reply) and refused.error
    assert refused.text == "Choose at least one cell to repaint."

    # Cells 1 and 9 (top left, bottom right); each press names the new selection.
    grid = await region.click(ctx, press(grid, "⬜ 1"))
    grid = await region.click(ctx, press(grid, "⬜ 9"))
    assert isinstance(grid, Reply)
    assert labels(grid)[0][0] == "✅ 1" and labels(grid)[2][2] == "✅ 9"
    assert grid.text.splitlines()[1:] == ["✅⬜⬜", "⬜⬜⬜", "⬜⬜✅"]
    cleared = await region.click(ctx, press(grid, "⬅️ Back"))
    assert isinstance(cleared, Reply) and "✅" not in cleared.text

    new, after = await result_of(harness, await region.click(ctx, press(grid, "Repaint")))
    assert new.request.kind == "inpaint" and new.request.prompt == "a red fox"
    assert new.request.init_image == job.images[0].path and new.request.mask_image
    assert after.shape == before.shape
    mask = canvas.cell_mask(0b100000001, before.shape[1], before.shape[0])
    outside = np.asarray(mask) == 0
    assert np.abs(after - before)[outside].max() <= 2  # kept, PNG round-trip aside
    chosen = np.asarray(mask) == 255
    assert np.abs(after - before)[chosen].mean() > 3  # really repainted
    assert "Denoising strength: 0.9" in new.images[0].parameters

    closed = await region.click(ctx, press(grid, "✖️ Cancel"))
    assert isinstance(closed, Reply) and closed.text == region.CLOSED and not closed.buttons


async def test_stale_or_forged_grid_data_is_refused(harness: Harness) -> None:
    ctx = harness.user()
    for data in ("rg:nojob:0:3", "rp:nojob:0:1"):
        outcome = await region.click(ctx, data)
        assert isinstance(outcome, Reply) and outcome.error
    outcome = await region.click(ctx, "rg:abc:0:999")
    assert isinstance(outcome, Reply) and outcome.text == region.OUT_OF_DATE


async def test_zoom_out_keeps_the_size_with_the_original_shrunk_in_the_centre(
    harness: Harness,
) -> None:
    ctx = harness.user()
    job = await painted(harness, ctx, "a lighthouse --steps 2 --model tiny2 --size 128x96")
    before = picture(harness, job)
    zoomed, after = await result_of(
        harness, await buttons.run(ctx, buttons.encode("zoom", job.id, 0))
    )
    assert zoomed.request.kind == "zoom" and after.shape == (96, 128, 3)
    shrunk = np.asarray(
        Image.fromarray(before.astype(np.uint8)).resize((64, 48), Image.Resampling.LANCZOS),
        dtype=np.int16,
    )
    feather = canvas.feather_width(64, 48)
    inner = slice(24 + feather, 72 - feather), slice(32 + feather, 96 - feather)
    assert np.abs(after[inner] - shrunk[feather:-feather, feather:-feather]).max() <= 2


async def test_each_pan_grows_one_side_and_keeps_the_original(harness: Harness) -> None:
    ctx = harness.user()
    job = await painted(harness, ctx, "a long road --steps 2 --model tiny2 --size 128x64")
    before = picture(harness, job)
    feather = canvas.feather_width(128, 64)
    expected = {"left": (64, 192), "right": (64, 192), "up": (96, 128), "down": (96, 128)}
    for direction, shape in expected.items():
        panned, after = await result_of(
            harness, await buttons.run(ctx, buttons.encode(direction, job.id, 0))
        )
        assert panned.request.kind == "pan" and after.shape[:2] == shape, direction
        height, width = shape
        if direction == "left":
            kept, original = after[:, width - 128 + feather :], before[:, feather:]
        elif direction == "right":
            kept, original = after[:, : 128 - feather], before[:, :-feather]
        elif direction == "up":
            kept, original = after[height - 64 + feather :, :], before[feather:, :]
        else:
            kept, original = after[: 64 - feather, :], before[:-feather, :]
        assert np.abs(kept - original).max() <= 2, direction


async def test_a_pan_past_max_side_is_refused(harness: Harness) -> None:
    ctx = harness.user()
    job = await painted(harness, ctx, "a wide field --steps 1 --model tiny2 --size 192x128")
    outcome = await buttons.run(ctx, buttons.encode("left", job.id, 0))
    assert isinstance(outcome, Reply) and outcome.error
    assert outcome.text == (
        "Panning would make the picture 288 px wide; this bot paints at most 256 px a side."
    )
    assert [j.id for j in await harness.jobs_of(ctx)] == [job.id]


@settings(max_examples=200, deadline=None)
@given(
    op=st.sampled_from([region.SHOW, region.REPAINT, region.KEEP, region.CANCEL]),
    job_id=st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=10, max_size=40),
    index=st.integers(0, 3),
    cells=st.integers(0, canvas.ALL_CELLS),
)
def test_grid_data_round_trips_within_telegrams_64_bytes(
    op: str, job_id: str, index: int, cells: int
) -> None:
    data = region.encode(op, job_id, index, cells)
    assert len(data.encode()) <= 64
    assert region.decode(data) == region.Press(op, job_id, index, cells)
    assert button_data.decode(data) is None  # never mistaken for a result button
    assert region.edits_in_place(data) == (op in (region.SHOW, region.CANCEL))
    keep = remix.KEEP + buttons.encode("vary", job_id, index)
    assert len(keep.encode()) <= 64 and re.fullmatch(remix.KEEP_PATTERN, keep)
