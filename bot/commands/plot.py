"""/plot: AUTOMATIC1111's X/Y/Z plot. One prompt, axes of values, one labelled grid.

`/plot a lighthouse --steps 4 --x steps=10-40:10 --y "sampler=Euler a,DDIM"`: every
combination is a cell, an ordinary job (same queue, limits and batching as any); the
grid is drawn and delivered once every cell has ended (`bot/jobs/plots.py`). The
prompt comes first; an axis's values run to the next option (or are quoted).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import zipfile
from pathlib import Path

from bot.commands import generation, params, settings, vary
from bot.commands.base import Context, ImageInput, JobAccepted, Outcome, Reply, SendFile
from bot.commands.generation import ImageSource
from bot.commands.plot_axes import (
    KINDS,
    AxisSpec,
    TooManyCells,
    axes_of,
    cell_count,
    cell_params,
    cells_of,
    label,
    split_axes,
)
from bot.jobs.admission import Refused
from bot.jobs.plots import CELL_KEY, PLOT_KEY, PlotAxis, axes_json
from bot.records import GenerationRequest, Job, JobStatus
from bot.store import new_job_id
from bot.validation import BadInput, size_for_aspect

log = logging.getLogger(__name__)

DEFAULT_STRENGTH = 0.6
NO_PICTURE = "A strength axis needs a picture: attach one (or reply to one) with /plot."


async def run(
    ctx: Context,
    text: str,
    typed: dict[str, str | None] | None = None,
    image: ImageInput | None = None,
) -> Outcome:
    """`text`: the prompt, options and axes inline; `typed`: Discord's x, y, z options."""
    prefs = await settings.user_settings(ctx)
    limit = ctx.services.config.limits.max_plot_cells
    try:
        rest, inline = split_axes(text)
        for name, value in (typed or {}).items():
            if value:
                inline[name] = value
        try:
            axes = axes_of(inline, limit)
            total = cell_count(axes)
        except TooManyCells:
            total = -1
        if total < 0 or total > limit:
            shown = f"{total} cells" if total > 0 else "more cells than that"
            raise BadInput(f"That plot has {shown}; the limit is {limit} (X × Y × Z values).")
        parsed = params.parse(rest, is_sampler=generation.is_sampler)
        if parsed.count not in (None, 1):
            raise BadInput("--n does not work with /plot: every cell is one picture.")
        kinds = {axis.kind for axis in axes}
        if "strength" in kinds and image is None:
            raise BadInput(NO_PICTURE)
        search = _search_word(axes, parsed.prompt)
        if parsed.seed is None and "seed" not in kinds:
            # One seed for every cell, so only the axes change the pictures.
            parsed = dataclasses.replace(parsed, seed=generation.random_seed())
        source, relative = None, None
        if image is not None:
            _, defaults = generation.resolve_model(ctx, parsed.model)
            path, relative = generation.new_input_path(ctx.services.config.data_dir)
            source = ImageSource(relative, defaults.width, defaults.height, DEFAULT_STRENGTH)
        kind = "vary" if source is not None else "imagine"
        values = cells_of(axes)
        requests = [
            generation.build_request(
                ctx,
                kind,
                cell_params(parsed, cell, search),
                source=source,
                require_prompt=source is None,
                prefs=prefs,
            )
            for cell in values
        ]
    except BadInput as exc:
        return await generation.refuse(ctx, exc)
    if image is not None:
        assert relative is not None
        loaded = await _load_picture(ctx, image, path)
        if isinstance(loaded, Reply):
            return loaded
        if parsed.size is None and "size" not in kinds:
            requests = [dataclasses.replace(r, width=loaded[0], height=loaded[1]) for r in requests]
    plot_axes = [
        PlotAxis(
            axis.name,
            axis.kind,
            KINDS[axis.kind],
            tuple(_axis_labels(axis, values, requests)),
        )
        for axis in axes
    ]
    outcome = await _submit(ctx, requests, plot_axes)
    if image is not None and not isinstance(outcome, JobAccepted):
        with contextlib.suppress(OSError):
            await asyncio.to_thread(path.unlink)
    return outcome


def _search_word(axes: list[AxisSpec], prompt: str) -> str | None:
    axis = next((axis for axis in axes if axis.kind == "prompt"), None)
    if axis is None:
        return None
    search = axis.values[0]
    if search not in prompt:
        raise BadInput(
            f"Prompt S/R: '{search[:40]}' (the first value) is not in the prompt; "
            "it is the word each value replaces."
        )
    return search


def _axis_labels(
    axis: AxisSpec, values: list[dict[str, str]], requests: list[GenerationRequest]
) -> list[str]:
    labels = []
    for value in axis.values:
        index = next(i for i, cell in enumerate(values) if cell[axis.kind] == value)
        labels.append(label(axis.kind, requests[index], value))
    return labels


async def _load_picture(ctx: Context, image: ImageInput, path: Path) -> tuple[int, int] | Reply:
    """Download, check and save the attached picture; its size at the model's area."""
    limits = ctx.services.config.limits
    try:
        vary.check_attachment(ctx, image)
        picture = await vary.fetch_picture(ctx, image)
    except BadInput as exc:
        return await generation.refuse(ctx, exc)
    _, defaults = generation.resolve_model(ctx, None)
    size = size_for_aspect(
        min(4.0, max(0.25, picture.width / picture.height)),
        base_width=defaults.width,
        base_height=defaults.height,
        max_side=limits.max_side,
    )
    await generation.save_input(picture, path)
    return size


async def _submit(ctx: Context, requests: list[GenerationRequest], axes: list[PlotAxis]) -> Outcome:
    services = ctx.services
    caller = ctx.caller
    origin = dict(ctx.origin)
    if (await services.store.user_settings(caller.key)).dm_results:
        origin[generation.DM_RESULTS] = True
    grid_job = Job(
        id=new_job_id(),
        platform=caller.platform,
        user_id=caller.user_id,
        user_name=caller.name,
        request=dataclasses.replace(requests[0], kind="plot", count=1, notes=[]),
        origin=origin,
        status=JobStatus.PLOTTING,
        created_at=time.time(),
        place=caller.place,
    )
    work = [(r, {PLOT_KEY: grid_job.id, CELL_KEY: i}) for i, r in enumerate(requests)]

    async def save(cells: list[Job]) -> None:
        await services.store.add_plot(grid_job, cells, axes_json(axes))

    try:
        cells = await services.scheduler.submit_group(caller, work, save=save)
    except Refused as exc:
        return Reply(str(exc), error=True)
    place = services.scheduler.position(cells[0].id)
    position, eta = place if place is not None else (0, None)
    notes = list(dict.fromkeys(note for r in requests for note in r.notes))
    text = "\n".join([f"⏳ Plot queued: {len(cells)} cells, 0 painted", *notes])
    return JobAccepted(grid_job, position, eta, text)


# -- the grid's buttons ----------------------------------------------------------------


async def cell_file(ctx: Context, grid_job: Job, index: int) -> Outcome:
    """U<n> under a grid: that cell's own PNG (with its own parameters)."""
    found = await ctx.services.store.plot(grid_job.id)
    if found is None or not 0 <= index < len(found[1]):
        return Reply("That button no longer works. Run the command again.", error=True)
    cells = await ctx.services.store.jobs_by_id([found[1][index]])
    if not cells or not cells[0].status.painted or not cells[0].images:
        return Reply(f"Cell {index + 1} was not painted.", error=True)
    path = ctx.services.config.data_dir / cells[0].images[0].path
    if not path.is_file():
        return Reply("This picture has expired.", error=True)
    return SendFile(path, f"atelier-{grid_job.id}-cell{index + 1}.png")


async def cells_file(ctx: Context, grid_job: Job) -> Outcome:
    """🗂 Cells: every painted cell's PNG in one zip."""
    found = await ctx.services.store.plot(grid_job.id)
    if found is None:
        return Reply("That button no longer works. Run the command again.", error=True)
    data_dir = ctx.services.config.data_dir
    cells = await ctx.services.store.jobs_by_id(found[1])
    files = [
        (n, data_dir / cell.images[0].path)
        for n, cell in enumerate(cells)
        if cell.status.painted and cell.images and (data_dir / cell.images[0].path).is_file()
    ]
    if not files:
        return Reply("This plot's cells have expired.", error=True)
    target = data_dir / "images" / f"{grid_job.id}-cells.zip"
    await asyncio.to_thread(_zip, target, files)
    return SendFile(target, f"atelier-{grid_job.id}-cells.zip")


def _zip(target: Path, files: list[tuple[int, Path]]) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for n, path in files:
            archive.write(path, f"cell{n + 1:02d}.png")


async def cancel(ctx: Context, grid_job: Job) -> Outcome:
    """/cancel on a plot: every cell still waiting or painting."""
    found = await ctx.services.store.plot(grid_job.id)
    stopped = 0
    for cell_id in found[1] if found else []:
        try:
            stopped += await ctx.services.scheduler.cancel(cell_id, ctx.caller)
        except Refused as exc:
            return Reply(str(exc), error=True)
    if not stopped:
        return Reply(f"Plot {grid_job.id} could not be cancelled: it has just finished.", True)
    return Reply(f"🛑 Cancelled the plot {grid_job.id}.")
