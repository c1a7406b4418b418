"""/plot's axes: `--x KIND=v1,v2,…` out of the text, values and ranges checked, and
the cells (every combination) they make. Pure: no store, no engine.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from bot.commands.params import PromptParams
from bot.records import GenerationRequest
from bot.validation import BadInput

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
# Grids sent at once (one per --z value): as many pictures as one result may have.
MAX_GRIDS = 4
USAGE = (
    "Give at least an X axis, like: /plot a lighthouse --x steps=10,20,30 --y cfg=4,7 "
    f"(kinds: {', '.join(KINDS)})."
)
_AXIS_MARKER = re.compile(r"(?:(?<=\s)|^)(?:--|[—–]-?)([xyzXYZ])(?=\s|$)")
_ANY_MARKER = re.compile(r"(?:(?<=\s)|^)(?:--|[—–]-?)[A-Za-z][A-Za-z_-]*(?=\s|$)")
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
