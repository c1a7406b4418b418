"""A /plot's life after it is queued: its cells' progress, and its grid once they end.

A plot is a grid job (status `plotting`, never queued itself) and one ordinary job per
cell, whose origin names the grid job (`PLOT_KEY`). Cells are queued, batched, painted,
retried and counted like any job; what they owe their owner goes to the grid instead:
when a cell ends, its outbox entry is settled here, and once every cell has ended the
grid is drawn and saved and the grid job's own outbox entry written, in one commit.
The delivery layer then sends it like any result, so it survives restarts and arrives
once. Every step is idempotent and starts from the store, so a restart anywhere in
between resumes (`waiting`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from bot.jobs.events import Cancelled, Failed, Finished, JobEvent, Progress, Queued, Started
from bot.plot_grid import GridAxis, draw_grid
from bot.records import Job, JobStatus, OutboxEntry, ResultImage
from bot.store import Store
from engine.png import encode_png

log = logging.getLogger("atelier.plots")

PLOT_KEY = "plot"  # in a cell's origin: the grid job's id
CELL_KEY = "cell"  # in a cell's origin: its index, row by row
NOTHING_PAINTED = "None of the plot's cells could be painted."


@dataclass(frozen=True)
class PlotAxis:
    name: str  # "x", "y" or "z"
    kind: str  # "steps", "prompt"…
    title: str  # as A1111 names it: "Steps", "Prompt S/R"
    labels: tuple[str, ...]  # one per value, as drawn on the margin


@dataclass(frozen=True)
class Plot:
    job_id: str
    axes: tuple[PlotAxis, ...]
    cells: tuple[str, ...]  # job ids, grid by grid (z), row by row (y), column (x)

    def axis(self, name: str) -> PlotAxis | None:
        return next((axis for axis in self.axes if axis.name == name), None)

    @property
    def per_grid(self) -> int:
        return len(self.cells) // self.grids

    @property
    def grids(self) -> int:
        z = self.axis("z")
        return len(z.labels) if z is not None else 1


def axes_json(axes: list[PlotAxis]) -> str:
    return json.dumps([asdict(axis) for axis in axes])


def _axes_from_json(text: str) -> tuple[PlotAxis, ...]:
    return tuple(
        PlotAxis(item["name"], item["kind"], item["title"], tuple(item["labels"]))
        for item in json.loads(text)
    )


def is_cell(job: Job) -> bool:
    return PLOT_KEY in job.origin


def grid_parameters(first: str, plot: Plot) -> str:
    """The first cell's A1111 parameters with the axes, as A1111's X/Y/Z plot writes them."""
    fields = ["Script: X/Y/Z plot"]
    for axis in plot.axes:
        values = ",".join(axis.labels).replace('"', "'")
        name = axis.name.upper()
        fields.append(f'{name} Type: {axis.title}, {name} Values: "{values}"')
    return f"{first.rstrip()}, {', '.join(fields)}" if first else ", ".join(fields)


def assemble(data_dir: Path, plot: Plot, cells: list[Job]) -> list[ResultImage]:
    """Draw and save one PNG per grid (z value); blocking: run it in a thread."""
    x = plot.axis("x")
    y = plot.axis("y")
    z = plot.axis("z")
    assert x is not None
    painted = [cell for cell in cells if cell.status.painted and cell.images]
    first = painted[0].images[0] if painted else None
    parameters = grid_parameters(first.parameters if first else "", plot)
    results = []
    for grid in range(plot.grids):
        chunk = cells[grid * plot.per_grid : (grid + 1) * plot.per_grid]
        pictures = [_open(data_dir, cell) for cell in chunk]
        title = f"{z.title}: {z.labels[grid]}" if z is not None else ""
        image = draw_grid(
            pictures,
            GridAxis(x.title, list(x.labels)),
            GridAxis(y.title, list(y.labels)) if y is not None else None,
            title,
        )
        relative = f"images/{plot.job_id}-{grid + 1}.png"
        path = data_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_png(image, parameters))
        seed = first.seed if first else 0
        results.append(ResultImage(relative, seed, parameters))
    return results


def _open(data_dir: Path, cell: Job) -> Image.Image | None:
    if not cell.status.painted or not cell.images:
        return None
    try:
        with Image.open(data_dir / cell.images[0].path) as picture:
            picture.load()
            return picture.convert("RGB")
    except OSError as exc:  # pruned or damaged: an empty cell, not a lost grid
        log.warning("plot cell %s: its picture cannot be read (%s)", cell.id, exc)
        return None


class PlotTracker:
    """Plots being painted: their cells' progress, and their grids when complete."""

    def __init__(self, store: Store, data_dir: Path) -> None:
        self._store = store
        self._data_dir = data_dir
        self._plots: dict[str, Plot] = {}
        self._ended: dict[str, set[str]] = {}  # grid job id -> cells that ended
        self._places: dict[str, dict[str, int]] = {}  # grid job id -> cell -> position
        self._locks: dict[str, asyncio.Lock] = {}

    async def plot(self, job_id: str) -> Plot | None:
        plot = self._plots.get(job_id)
        if plot is None:
            found = await self._store.plot(job_id)
            if found is None:
                return None
            plot = Plot(job_id, _axes_from_json(found[0]), tuple(found[1]))
            self._plots[job_id] = plot
        return plot

    async def grid_job(self, cell: Job) -> Job | None:
        return await self._store.get_job(str(cell.origin[PLOT_KEY]))

    async def status_text(self, cell: Job, event: JobEvent) -> str | None:
        """The grid job's status after this cell's event: cells done out of all."""
        plot_id = str(cell.origin[PLOT_KEY])
        plot = await self.plot(plot_id)
        if plot is None:
            return None
        ended = await self._ended_cells(plot)
        places = self._places.setdefault(plot_id, {})
        match event:
            case Queued(position=position):
                places[cell.id] = position
            case Started() | Progress():
                places[cell.id] = 0
            case Finished() | Failed() | Cancelled():
                ended.add(cell.id)
                places.pop(cell.id, None)
        done = f"{len(ended)}/{len(plot.cells)} cells painted"
        waiting = [place for place in places.values() if place > 0]
        if len(ended) < len(plot.cells) and places and len(waiting) == len(places):
            first = min(waiting)
            where = "next up" if first == 1 else f"position {first}"
            return f"⏳ Plot queued: {where} · {done}"
        return f"🎨 Painting the plot… {done}"

    async def cell_ended(self, cell: Job) -> bool:
        """Settle the cell's outbox entry; True when that completed its plot (the grid
        job's own entry is then written)."""
        plot_id = str(cell.origin[PLOT_KEY])
        await self._store.delivered(cell.id)
        plot = await self.plot(plot_id)
        if plot is not None:
            (await self._ended_cells(plot)).add(cell.id)
        return await self.complete(plot_id)

    async def waiting(self, platform: str) -> list[str]:
        """Grid jobs of `platform` still waiting for cells (after a restart)."""
        jobs = await self._store.jobs_with_status(JobStatus.PLOTTING)
        return [job.id for job in jobs if job.platform == platform]

    async def complete(self, plot_id: str) -> bool:
        """If every cell has ended, finish the grid job; True if this call did."""
        lock = self._locks.setdefault(plot_id, asyncio.Lock())
        async with lock:
            grid_job = await self._store.get_job(plot_id)
            plot = await self.plot(plot_id)
            if grid_job is None or plot is None or grid_job.status is not JobStatus.PLOTTING:
                return False
            cells = await self._store.jobs_by_id(list(plot.cells))
            if len(cells) < len(plot.cells) or not all(cell.status.finished for cell in cells):
                return False
            await self._finish(grid_job, plot, cells)
        self._forget(plot_id)
        return True

    async def _finish(self, grid_job: Job, plot: Plot, cells: list[Job]) -> None:
        if any(cell.status is JobStatus.CANCELLED for cell in cells):
            grid_job.status = JobStatus.CANCELLED
            letter = OutboxEntry(grid_job.id, "cancelled")
        elif not any(cell.status.painted for cell in cells):
            failed = next((cell.error for cell in cells if cell.error), None)
            grid_job.status, grid_job.error = JobStatus.FAILED, failed or NOTHING_PAINTED
            letter = OutboxEntry(grid_job.id, "failed", grid_job.error)
        else:
            try:
                grid_job.images = await asyncio.to_thread(assemble, self._data_dir, plot, cells)
                grid_job.status = JobStatus.DELIVERING
                letter = OutboxEntry(grid_job.id, "result")
            except OSError as exc:
                log.error("plot %s: the grid cannot be saved: %s", grid_job.id, exc)
                grid_job.status, grid_job.error = JobStatus.FAILED, NOTHING_PAINTED
                letter = OutboxEntry(grid_job.id, "failed", "The grid could not be saved.")
        grid_job.finished_at = max((cell.finished_at or 0.0 for cell in cells), default=0.0)
        await self._store.finish_job(grid_job, letter)
        log.info("plot %s: %s (%d cells)", grid_job.id, grid_job.status.value, len(cells))

    async def _ended_cells(self, plot: Plot) -> set[str]:
        ended = self._ended.get(plot.job_id)
        if ended is None:
            cells = await self._store.jobs_by_id(list(plot.cells))
            ended = {cell.id for cell in cells if cell.status.finished}
            self._ended[plot.job_id] = ended
        return ended

    def _forget(self, plot_id: str) -> None:
        for memory in (self._plots, self._ended, self._places, self._locks):
            memory.pop(plot_id, None)  # type: ignore[attr-defined]
