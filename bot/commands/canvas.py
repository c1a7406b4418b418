"""Geometry of the editing loop: which pixels a repaint may change, and the enlarged
canvases of zoom out and pan. Pure functions over Pillow pictures (no platform, no
engine), so they are tested pixel by pixel.

Masks follow the engine's rule: white (255) is repainted, black (0) kept; grey blends.
The engine pastes the original back wherever the mask is black
(`engine.images.paste_unmasked`), so a black pixel stays exactly the original's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageFilter

from bot.validation import BadInput

GRID = 3  # the region picker's cells: GRID x GRID
ALL_CELLS = (1 << (GRID * GRID)) - 1
Direction = Literal["left", "right", "up", "down"]
DIRECTIONS: tuple[Direction, ...] = ("left", "right", "up", "down")

Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive)


def feather_width(width: int, height: int) -> int:
    """How far a mask's edge fades: about 1/24 of the shorter side, at least 2 px."""
    return max(2, min(width, height) // 24)


def cell_box(cell: int, width: int, height: int) -> Box:
    """The pixels of cell `cell` (0 = top left, row by row) of the 3x3 grid."""
    if not 0 <= cell < GRID * GRID:
        raise ValueError(f"no cell {cell}")
    column, row = cell % GRID, cell // GRID
    return (
        round(column * width / GRID),
        round(row * height / GRID),
        round((column + 1) * width / GRID),
        round((row + 1) * height / GRID),
    )


def chosen_cells(cells: int) -> list[int]:
    return [cell for cell in range(GRID * GRID) if cells >> cell & 1]


def _distance_to_boxes(width: int, height: int, boxes: list[Box]) -> np.ndarray:
    """Each pixel's distance to the nearest box (0 inside one), pixel centres."""
    xs = np.arange(width, dtype=np.float32)[None, :] + 0.5
    ys = np.arange(height, dtype=np.float32)[:, None] + 0.5
    nearest = np.full((height, width), np.inf, dtype=np.float32)
    for left, top, right, bottom in boxes:
        dx = np.maximum(np.maximum(left - xs, xs - right), 0.0)
        dy = np.maximum(np.maximum(top - ys, ys - bottom), 0.0)
        nearest = np.minimum(nearest, np.hypot(dx, dy))
    return nearest


def _ramp(distance: np.ndarray, feather: int) -> Image.Image:
    """255 at distance 0, fading linearly to 0 at `feather` px."""
    values = np.clip(1.0 - distance / max(feather, 1), 0.0, 1.0) * 255.0
    return Image.fromarray(np.round(values).astype(np.uint8), mode="L")


def cell_mask(cells: int, width: int, height: int, feather: int | None = None) -> Image.Image:
    """White over the chosen cells (bit n = cell n), fading to black over `feather` px
    around them, so the repaint blends in; everything farther stays the original's."""
    if not 0 < cells <= ALL_CELLS:
        raise ValueError(f"cells must be a non-empty set of the {GRID * GRID} cells")
    feather = feather_width(width, height) if feather is None else feather
    boxes = [cell_box(cell, width, height) for cell in chosen_cells(cells)]
    return _ramp(_distance_to_boxes(width, height, boxes), feather)


def _keep_mask(width: int, height: int, keep: Box, feather: int) -> Image.Image:
    """Black over `keep` (the original's pixels), white elsewhere (new canvas), with a
    seam `feather` px wide just inside `keep` that fades, so the two blend."""
    left, top, right, bottom = keep
    inner = (left + feather, top + feather, right - feather, bottom - feather)
    if inner[0] >= inner[2] or inner[1] >= inner[3]:
        inner = keep
    # Distance from the inner box: 0 inside (kept), `feather` at the edge of `keep`.
    distance = _distance_to_boxes(width, height, [inner])
    mask = np.clip(distance / max(feather, 1), 0.0, 1.0) * 255.0
    return Image.fromarray(np.round(mask).astype(np.uint8), mode="L")


@dataclass(frozen=True)
class Canvas:
    """An enlarged picture to inpaint: the original pasted at `keep`, a mask saying
    what to paint (white), and the size to paint at."""

    image: Image.Image
    mask: Image.Image
    keep: Box  # where the original's pixels are, in `image`

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def _backdrop(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The original stretched over the canvas and blurred: the new area starts from
    the picture's own colours, not a flat grey the painter would keep."""
    stretched = image.resize(size, Image.Resampling.BILINEAR)
    return stretched.filter(ImageFilter.GaussianBlur(radius=max(size) / 16))


def zoom_out(image: Image.Image, feather: int | None = None) -> Canvas:
    """The original at half its size in the centre of a picture of the same size; the
    border around it is painted new."""
    image = image.convert("RGB")
    width, height = image.size
    small = image.resize((max(1, width // 2), max(1, height // 2)), Image.Resampling.LANCZOS)
    left, top = (width - small.width) // 2, (height - small.height) // 2
    canvas = _backdrop(image, image.size)
    canvas.paste(small, (left, top))
    keep = (left, top, left + small.width, top + small.height)
    feather = feather_width(*small.size) if feather is None else feather
    return Canvas(canvas, _keep_mask(width, height, keep, feather), keep)


def pan_size(width: int, height: int, direction: Direction, grid: int) -> tuple[int, int]:
    """The size after panning: half the side more on `direction`, on the model's grid."""
    if direction in ("left", "right"):
        return width + grid * math.ceil(width / 2 / grid), height
    return width, height + grid * math.ceil(height / 2 / grid)


def check_pan(width: int, height: int, direction: Direction, grid: int, max_side: int) -> None:
    """BadInput when the panned picture would be larger than this bot paints."""
    new_width, new_height = pan_size(width, height, direction, grid)
    if max(new_width, new_height) > max_side:
        side = "wide" if new_width > max_side else "tall"
        raise BadInput(
            f"Panning would make the picture {max(new_width, new_height)} px {side}; "
            f"this bot paints at most {max_side} px a side."
        )


def pan(image: Image.Image, direction: Direction, grid: int, feather: int | None = None) -> Canvas:
    """The original, its pixels unchanged, at one end of a longer picture; the new
    part on `direction` is painted."""
    image = image.convert("RGB")
    width, height = image.size
    new_width, new_height = pan_size(width, height, direction, grid)
    left = new_width - width if direction == "left" else 0
    top = new_height - height if direction == "up" else 0
    canvas = _backdrop(image, (new_width, new_height))
    canvas.paste(image, (left, top))
    keep = (left, top, left + width, top + height)
    feather = feather_width(width, height) if feather is None else feather
    mask = _keep_mask(new_width, new_height, _open_side(keep, direction, feather), feather)
    return Canvas(canvas, mask, keep)


def _open_side(keep: Box, direction: Direction, feather: int) -> Box:
    """`keep` grown by `feather` on every side but the new one, so the seam fades only
    where the original meets the new part (its outer edges stay exactly kept)."""
    left, top, right, bottom = keep
    grow = {"left": (0, 1, 1, 1), "right": (1, 1, 0, 1), "up": (1, 0, 1, 1), "down": (1, 1, 1, 0)}
    a, b, c, d = grow[direction]
    return (left - a * feather, top - b * feather, right + c * feather, bottom + d * feather)


def scale_mask(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A user's mask as greyscale at the picture's size (white = repaint)."""
    grey = mask.convert("L")
    return grey if grey.size == size else grey.resize(size, Image.Resampling.BILINEAR)


def has_paint(mask: Image.Image, threshold: int = 16) -> bool:
    """Whether any pixel of the mask asks for a repaint (near-black ones do not)."""
    extrema = mask.convert("L").getextrema()
    return int(extrema[1]) > threshold  # type: ignore[index]
