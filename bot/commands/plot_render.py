"""What a finished /plot shows: its caption and buttons (one per cell, the PNGs)."""

from __future__ import annotations

from bot.commands import button_data
from bot.commands.base import Button
from bot.commands.render import CAPTION_LIMIT, _shorten, _utf16_len
from bot.jobs.plots import Plot
from bot.records import Job

# Discord allows 5 rows of 5 buttons; one row is kept for the PNG and Delete buttons.
CELL_BUTTONS = 20
PER_ROW = 5


def axes_text(plot: Plot) -> str:
    """`X: Steps 10, 20 · Y: CFG Scale 4, 7`"""
    return " · ".join(
        f"{axis.name.upper()}: {axis.title} {', '.join(axis.labels)}" for axis in plot.axes
    )


def caption(job: Job, plot: Plot) -> str:
    request = job.request
    details = (
        f"📊 {len(plot.cells)} cells · Steps: {request.steps} · Sampler: {request.sampler} · "
        f"CFG: {request.cfg:g} · Seed: {request.seed} · Model: {request.model}"
    )
    axes = _shorten(axes_text(plot), CAPTION_LIMIT // 3)
    budget = CAPTION_LIMIT - _utf16_len(details) - _utf16_len(axes) - 2
    prompt = _shorten(request.prompt, max(0, budget)) or "(no prompt)"
    return "\n".join([prompt, axes, details])


def buttons(job: Job, plot: Plot) -> list[list[Button]]:
    """U1… pull out one cell; over `CELL_BUTTONS` cells, one button sends them all."""
    rows: list[list[Button]] = []
    count = len(plot.cells)
    if count <= CELL_BUTTONS:
        cells = [Button(f"U{n + 1}", button_data.encode("cell", job.id, n)) for n in range(count)]
        rows = [cells[start : start + PER_ROW] for start in range(0, count, PER_ROW)]
    else:
        rows = [[Button("🗂 Cells", button_data.encode("cells", job.id))]]
    grids = max(1, len(job.images))
    pngs = [
        Button("📄 PNG" if grids == 1 else f"📄 {n + 1}", button_data.encode("png", job.id, n))
        for n in range(grids)
    ]
    rows.append([*pngs, Button("🗑 Delete", button_data.encode("delete", job.id))])
    return rows
