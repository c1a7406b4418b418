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
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bot.commands import generation, params, settings
from bot.commands.base import Context, ImageInput, JobAccepted, Outcome, Reply, SendFile
from bot.commands.generation import ImageSource
from bot.commands.params import PromptParams
from bot.jobs.plots import CELL_KEY, PLOT_KEY, PlotAxis, axes_json
from bot.jobs.scheduler import Refused
from bot.records import GenerationRequest, Job, JobStatus
from bot.store import new_job_id
from bot.validation import BadInput, decode_image, size_for_aspect

log = logging.getLogger(__name__)

AXES = ("x", "y", "z")
# Kind -> how A1111's X/Y/Z plot names it (drawn on the margins, written in the PNG).
KINDS = {
    "seed": "Seed",
    "steps": "Steps",
    "cfg": "CFG Scale",
    "sampler": "Sampler",
    "model": "Checkpoint name",
    "size": "Size",
    "strength": "Denoising",
    "prompt": "Prompt S/R",
}
_NUMBERS: dict[str, type] = {"seed": int, "steps": int, "cfg": float, "strength": float}
DEFAULT_STRENGTH = 0.6
# Grids sent at once (one per --z value): as many pictures as one result may have.
MAX_GRIDS = 4
USAGE = (
    "Give at least an X axis, like: /plot a lighthouse --x steps=10,20,30 --y cfg=4,7 "
    f"(kinds: {', '.join(KINDS)})."
)
NO_PICTURE = "A strength axis needs a picture: attach one (or reply to one) with /plot."
_AXIS_MARKER = re.compile(r"(?:(?<=\s)|^)(?:--|[—–]-?)([xyzXYZ])(?=\s|$)")
_ANY_MARKER = re.compile(r"(?:(?<=\s)|^)--[A-Za-z][A-Za-z_-]*(?=\s|$)")
_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*(?::\s*(\d+(?:\.\d+)?))?\s*$")


@dataclass(frozen=True)
class AxisSpec:
    name: str  # x, y or z
    kind: str
    values: tuple[str, ...]


def split_axes(text: str) -> tuple[str, dict[str, str]]:
    """The text without its `--x/--y/--z` options, and each axis's raw value."""
    found: dict[str, str] = {}
    kept: list[str] = []
    position = 0
    for match in _AXIS_MARKER.finditer(text):
        if match.start() < position:
            continue  # inside the previous axis's quoted value
        name = match[1].lower()
        if name in found:
            raise BadInput(f"--{name} is given twice.")
        kept.append(text[position : match.start()])
        rest = text[match.end() :]
        quoted = re.match(r"\s*[\"“”„'‘’](.*?)[\"“”'‘’](?=\s|$)", rest, re.DOTALL)
        if quoted:
            value, end = quoted[1], quoted.end()
        else:
            following = _ANY_MARKER.search(rest)
            end = following.start() if following else len(rest)
            value = rest[:end]
        found[name] = value.strip()
        position = match.end() + end
    kept.append(text[position:])
    return " ".join(part.strip() for part in kept if part.strip()), found


def parse_axis(name: str, raw: str, limit: int) -> AxisSpec:
    """`steps=10,20` or `steps=10-40:10` → an axis; BadInput says what is wrong."""
    kind, sep, values = raw.partition("=")
    kind = kind.strip().lower()
    if not sep or not kind:
        raise BadInput(f"--{name} needs a kind and values, like --{name} steps=10,20,30.")
    if kind not in KINDS:
        raise BadInput(f"Unknown axis kind '{kind[:30]}' for --{name}. Kinds: {', '.join(KINDS)}.")
    items = [item.strip() for item in values.split(",")]
    if not any(items):
        raise BadInput(f"--{name} {kind}= needs at least one value.")
    if "" in items:
        raise BadInput(f"--{name} {kind}= has an empty value (two commas in a row?).")
    expanded: list[str] = []
    for item in items:
        expanded.extend(_expand(name, kind, item, limit - len(expanded)))
    return AxisSpec(name, kind, tuple(expanded))


def _expand(name: str, kind: str, item: str, room: int) -> list[str]:
    """One value, or a range `10-40:10` of numbers, checked to be numbers."""
    number = _NUMBERS.get(kind)
    if number is None:
        return [item]
    match = _RANGE.match(item)
    if match is None:
        try:
            number(item)
        except ValueError:
            what = "a whole number" if number is int else "a number"
            raise BadInput(f"--{name} {kind}: '{item[:20]}' is not {what}.") from None
        return [item]
    start, stop = float(match[1]), float(match[2])
    step = float(match[3]) if match[3] else 1.0
    if number is int and not all(float(v).is_integer() for v in (start, stop, step)):
        raise BadInput(f"--{name} {kind}: a range of whole numbers, like 10-40:10.")
    if step <= 0 or stop < start:
        raise BadInput(f"--{name} {kind}: a range goes up, like 10-40:10 (from-to:step).")
    count = int((stop - start) / step + 1e-9) + 1
    if count > max(room, 0):
        raise TooManyCells(None)
    values = [start + i * step for i in range(count)]
    return [str(int(v)) if number is int else f"{round(v, 6):g}" for v in values]


class TooManyCells(BadInput):
    """More cells than `max_plot_cells`; the count is filled in once it is known."""


def axes_of(typed: dict[str, str], limit: int) -> list[AxisSpec]:
    if "x" not in typed:
        raise BadInput(USAGE)
    if "z" in typed and "y" not in typed:
        raise BadInput("--z needs a --y axis too.")
    axes = [parse_axis(name, typed[name], limit) for name in AXES if name in typed]
    kinds = [axis.kind for axis in axes]
    for kind in kinds:
        if kinds.count(kind) > 1:
            raise BadInput(f"{KINDS[kind]} is on two axes; give each kind once.")
    z = next((axis for axis in axes if axis.name == "z"), None)
    if z is not None and len(z.values) > MAX_GRIDS:
        raise BadInput(f"--z has {len(z.values)} values; one plot sends at most {MAX_GRIDS} grids.")
    return axes


def cell_count(axes: list[AxisSpec]) -> int:
    total = 1
    for axis in axes:
        total *= len(axis.values)
    return total


def cells_of(axes: list[AxisSpec]) -> list[dict[str, str]]:
    """Each cell's axis values (kind -> value), grid by grid, row by row."""
    by_name = {axis.name: axis for axis in axes}
    z = by_name.get("z")
    y = by_name.get("y")
    x = by_name["x"]
    cells = []
    for z_value in z.values if z else [None]:
        for y_value in y.values if y else [None]:
            for x_value in x.values:
                cell = {x.kind: x_value}
                if y is not None and y_value is not None:
                    cell[y.kind] = y_value
                if z is not None and z_value is not None:
                    cell[z.kind] = z_value
                cells.append(cell)
    return cells


def cell_params(base: PromptParams, values: dict[str, str], search: str | None) -> PromptParams:
    """The options of one cell: the base ones with this cell's axis values."""
    changes: dict[str, object] = {}
    for kind, value in values.items():
        if kind == "prompt":
            # A1111's Prompt S/R: the axis's first value, replaced by this one.
            assert search is not None
            changes["prompt"] = base.prompt.replace(search, value)
        elif kind in _NUMBERS:
            changes[kind] = _NUMBERS[kind](value)
        else:
            changes[kind] = value
    return dataclasses.replace(base, **changes)


def label(kind: str, request: GenerationRequest, value: str) -> str:
    """An axis value as the cell was painted (canonical sampler and model names)."""
    match kind:
        case "seed":
            return str(request.seed)
        case "steps":
            return str(request.steps)
        case "cfg":
            return f"{request.cfg:g}"
        case "sampler":
            return request.sampler
        case "model":
            return request.model
        case "size":
            return f"{request.width}x{request.height}"
        case "strength":
            return f"{request.strength:g}" if request.strength is not None else value
    return value


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
    limit_bytes = int(limits.max_attachment_mb * 1_000_000)
    too_big = f"That picture is over {limits.max_attachment_mb:g} MB."
    if image.content_type is not None and not image.content_type.startswith("image/"):
        return Reply("That file is not a picture Atelier can read (PNG, JPEG or WebP).", True)
    if image.size is not None and image.size > limit_bytes:
        return Reply(too_big, error=True)
    try:
        data = await image.download()
    except Exception as exc:  # each platform raises its own errors
        log.warning("downloading %r failed: %s", image.filename, type(exc).__name__)
        return Reply("I couldn't download that picture; please send it again.", error=True)
    if len(data) > limit_bytes:
        return Reply(too_big, error=True)
    try:
        picture = await asyncio.to_thread(decode_image, data, max_side=limits.max_side)
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
