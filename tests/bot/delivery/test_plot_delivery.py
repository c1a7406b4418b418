"""A plot's grid through the courier: cells never reach the chat, the grid arrives
exactly once, across kills at any point (the courier restarted from the store)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from bot.jobs.events import Finished
from bot.jobs.painting import outbox_entry
from bot.jobs.plots import CELL_KEY, PLOT_KEY, PlotAxis, axes_json
from bot.records import Job, JobStatus, ResultImage
from bot.store import Store
from tests.bot.delivery.test_courier import ScriptedChat, deliver_all
from tests.bot.jobs.scheduler_harness import request

AXES = [PlotAxis("x", "seed", "Seed", ("1", "2", "3"))]


async def _plot(store: Store, data: Path, grid_id: str, *, settled: bool) -> list[Job]:
    """A plot whose three cells are painted; `settled`: their entries already taken
    by the grid (the bot stopped before drawing it)."""
    grid = Job(grid_id, "chat", "1", "Ann", request(), {"chat_id": 1}, JobStatus.PLOTTING)
    cells = [
        Job(f"{grid_id}c{n}", "chat", "1", "Ann", request(), {PLOT_KEY: grid_id, CELL_KEY: n})
        for n in range(3)
    ]
    await store.add_plot(grid, cells, axes_json(AXES))
    (data / "images").mkdir(exist_ok=True)
    for n, cell in enumerate(cells):
        Image.new("RGB", (32, 32), (80 * n, 0, 0)).save(data / "images" / f"{cell.id}.png")
        cell.images = [ResultImage(f"images/{cell.id}.png", n, f"a fox\nSeed: {n}")]
        cell.status, cell.finished_at = JobStatus.DELIVERING, time.time()
        await store.finish_job(cell, outbox_entry(cell.id, Finished(cell.images)))
        if settled:
            await store.delivered(cell.id)
    return cells


@pytest.mark.parametrize("resend_is_safe", [False, True])
@pytest.mark.parametrize("grid_send", ["ok", "killed-after", "killed-before", "429"])
async def test_the_grid_arrives_once_and_no_cell_is_sent(
    tmp_path: Path, resend_is_safe: bool, grid_send: str
) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        cells = await _plot(store, tmp_path, "gridone", settled=False)
        await _plot(store, tmp_path, "gridtwo", settled=True)
        chat = ScriptedChat(resend_is_safe, {"gridone": [grid_send], "gridtwo": [grid_send]})
        await deliver_all(store, tmp_path, chat)
        for grid_id in ("gridone", "gridtwo"):
            grid = await store.get_job(grid_id)
            assert grid is not None and grid.status is JobStatus.DONE
            # Arrived once; a kill that may have cut the send off leaves a note with
            # the PNG button instead (never a second copy).
            noted = [note for note in chat.notes if note[0] == grid_id]
            if grid_send.startswith("killed") and not resend_is_safe:
                # Its own kill, or the other grid's, cut the send off at some point.
                assert chat.pictures[grid_id] <= 1 and len(noted) == 1
                if grid_send == "killed-before":
                    assert chat.pictures[grid_id] == 0
            else:
                assert chat.pictures[grid_id] == 1
        assert not any(cell.id in chat.pictures for cell in cells)
        assert all(
            job.status is JobStatus.DONE for job in await store.jobs_by_id([c.id for c in cells])
        )
    finally:
        await store.close()
