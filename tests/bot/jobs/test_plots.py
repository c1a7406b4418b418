"""A plot's grid job against a real SQLite store: saved with its cells, counted by its
cells, and finished exactly once when they have all ended."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from bot.config import LimitsConfig
from bot.jobs.limits import Limits, QueueState
from bot.jobs.plots import CELL_KEY, PLOT_KEY, PlotAxis, PlotTracker, axes_json, grid_parameters
from bot.records import GenerationRequest, Job, JobStatus, ResultImage
from bot.store import Store, new_job_id

AXES = [
    PlotAxis("x", "steps", "Steps", ("1", "2")),
    PlotAxis("y", "cfg", "CFG Scale", ("4", "7")),
]


def _request(**changes: object) -> GenerationRequest:
    values: dict[str, object] = dict(
        kind="imagine",
        prompt="a fox",
        negative="",
        model="tiny",
        seed=1,
        steps=1,
        cfg=4.0,
        width=64,
        height=64,
        sampler="Euler a",
    )
    values.update(changes)
    return GenerationRequest(**values)  # type: ignore[arg-type]


def _job(status: JobStatus, **changes: object) -> Job:
    kind = "plot" if status is JobStatus.PLOTTING else "imagine"
    return Job(
        id=new_job_id(), platform="telegram", user_id="7", user_name="ann",
        request=_request(kind=kind), status=status, created_at=time.time(), **changes,
    )  # fmt: skip


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(tmp_path / "db.sqlite3")
    yield store
    await store.close()


async def _plot(store: Store) -> tuple[Job, list[Job]]:
    grid = _job(JobStatus.PLOTTING, origin={"chat_id": 5})
    cells = [_job(JobStatus.QUEUED, origin={PLOT_KEY: grid.id, CELL_KEY: i}) for i in range(4)]
    await store.add_plot(grid, cells, axes_json(AXES))
    return grid, cells


async def _paint(store: Store, data_dir: Path, cell: Job, shade: int) -> None:
    path = data_dir / "images" / f"{cell.id}-1.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), (shade, 0, 0)).save(path)
    cell.images = [ResultImage(f"images/{cell.id}-1.png", 1, f"a fox\nSteps: {shade}")]
    cell.status = JobStatus.DELIVERING
    await store.update_job(cell)


async def test_a_plot_is_saved_with_its_cells_and_only_the_cells_count(
    store: Store, tmp_path: Path
) -> None:
    grid, cells = await _plot(store)
    assert await store.plot(grid.id) == (axes_json(AXES), [cell.id for cell in cells])
    assert [job.id for job in await store.jobs_with_status(JobStatus.PLOTTING)] == [grid.id]
    grid.status = JobStatus.DONE
    await store.update_job(grid)
    today = await store.images_today("telegram:7", since=0, until=time.time() + 60)
    assert today == 4


async def test_the_grid_is_drawn_once_when_every_cell_has_ended(
    store: Store, tmp_path: Path
) -> None:
    grid, cells = await _plot(store)
    tracker = PlotTracker(store, tmp_path)
    for n, cell in enumerate(cells[:3]):
        await _paint(store, tmp_path, cell, 40 * n)
        assert not await tracker.cell_ended(cell)
    cells[3].status, cells[3].error = JobStatus.FAILED, "blocked"
    await store.update_job(cells[3])
    assert await tracker.cell_ended(cells[3])
    assert not await tracker.complete(grid.id)  # once only

    finished = await store.get_job(grid.id)
    assert finished is not None and finished.status is JobStatus.DELIVERING
    entry = await store.outbox_entry(grid.id)
    assert entry is not None and entry.kind == "result"
    (image,) = finished.images
    with Image.open(tmp_path / image.path) as png:
        assert png.width > 128 and png.height > 128
        assert png.info["parameters"].startswith("a fox\nSteps: 0, Script: X/Y/Z plot")
    # The cells' own entries are settled: nothing of theirs goes to the chat.
    for cell in cells:
        assert await store.outbox_entry(cell.id) is None


async def test_a_cancelled_cell_cancels_the_grid_and_nothing_painted_fails_it(
    store: Store, tmp_path: Path
) -> None:
    grid, cells = await _plot(store)
    tracker = PlotTracker(store, tmp_path)
    for cell in cells:
        cell.status = JobStatus.CANCELLED if cell is cells[0] else JobStatus.FAILED
        await store.update_job(cell)
    assert await tracker.complete(grid.id)
    entry = await store.outbox_entry(grid.id)
    assert entry is not None and entry.kind == "cancelled"

    grid, cells = await _plot(store)
    for cell in cells:
        cell.status, cell.error = JobStatus.FAILED, "The engine crashed twice"
        await store.update_job(cell)
    assert await tracker.complete(grid.id)
    entry = await store.outbox_entry(grid.id)
    assert entry is not None and (entry.kind, entry.text) == ("failed", "The engine crashed twice")


def test_a_plot_needs_one_free_slot_and_queue_room_for_all_its_cells() -> None:
    limits = Limits(LimitsConfig(max_queue=10, max_queued_per_user=3, daily_quota=8))

    def state(queue: int, mine: int, today: int = 0) -> QueueState:
        return QueueState(queue, mine, lambda: 5.0, today)

    ok = limits.check(
        "u", is_admin=False, banned=False, images_wanted=6, state=state(4, 0), jobs_wanted=6
    )
    assert ok is None
    full = limits.check(
        "u", is_admin=False, banned=False, images_wanted=7, state=state(4, 0), jobs_wanted=7
    )
    assert full is not None and "busy" in full.message
    quota = limits.check(
        "u", is_admin=False, banned=False, images_wanted=6, state=state(0, 0, 3), jobs_wanted=6
    )
    assert quota is not None and "5 of your 8 daily pictures left" in quota.message


def test_the_grid_parameters_carry_the_axes_as_a1111_writes_them() -> None:
    from bot.jobs.plots import Plot

    plot = Plot("g", tuple(AXES), ("a", "b", "c", "d"))
    text = grid_parameters("a fox\nSteps: 1, Seed: 3", plot)
    assert text == (
        'a fox\nSteps: 1, Seed: 3, Script: X/Y/Z plot, X Type: Steps, X Values: "1,2", '
        'Y Type: CFG Scale, Y Values: "4,7"'
    )
