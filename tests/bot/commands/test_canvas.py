"""The editing loop's geometry, pixel by pixel: cell masks, zoom out, pan."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.commands import canvas
from bot.validation import BadInput


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def gradient(width: int, height: int) -> Image.Image:
    """A picture whose every pixel differs from its neighbours, so shifts show."""
    xs = np.arange(width)[None, :].repeat(height, 0)
    ys = np.arange(height)[:, None].repeat(width, 1)
    rgb = np.stack([xs * 255 // width, ys * 255 // height, (xs + ys) % 256], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8), mode="RGB")


def test_a_cell_mask_is_white_on_the_chosen_cells_and_black_beyond_the_feather() -> None:
    mask = pixels(canvas.cell_mask(0b000010000, 90, 60, feather=4))  # the centre cell
    assert mask.shape == (60, 90)
    assert (mask[20:40, 30:60] == 255).all()
    # Fading just outside the cell, then black.
    assert 0 < mask[30, 28] < 255 and 0 < mask[18, 45] < 255
    assert (mask[:, :26] == 0).all() and (mask[:, 64:] == 0).all()
    assert (mask[:16, :] == 0).all() and (mask[44:, :] == 0).all()


def test_all_cells_cover_the_whole_picture() -> None:
    assert (pixels(canvas.cell_mask(canvas.ALL_CELLS, 64, 48)) == 255).all()


def test_an_empty_selection_is_no_mask() -> None:
    with pytest.raises(ValueError):
        canvas.cell_mask(0, 64, 64)


@settings(max_examples=60, deadline=None)
@given(
    cells=st.integers(1, canvas.ALL_CELLS),
    width=st.integers(24, 200),
    height=st.integers(24, 200),
)
def test_cell_masks_never_touch_pixels_far_from_the_chosen_cells(
    cells: int, width: int, height: int
) -> None:
    feather = canvas.feather_width(width, height)
    mask = pixels(canvas.cell_mask(cells, width, height))
    chosen = np.zeros((height, width), dtype=bool)
    near = np.zeros((height, width), dtype=bool)
    for cell in canvas.chosen_cells(cells):
        left, top, right, bottom = canvas.cell_box(cell, width, height)
        chosen[top:bottom, left:right] = True
        near[max(0, top - feather) : bottom + feather, max(0, left - feather) : right + feather] = (
            True
        )
    assert (mask[chosen] == 255).all()
    assert (mask[~near] == 0).all()


def test_zoom_out_keeps_the_size_and_centres_the_original_at_half_size() -> None:
    original = gradient(128, 96)
    result = canvas.zoom_out(original, feather=4)
    assert result.size == (128, 96)
    assert result.keep == (32, 24, 96, 72)
    shrunk = pixels(original.resize((64, 48), Image.Resampling.LANCZOS))
    assert (pixels(result.image)[24:72, 32:96] == shrunk).all()
    mask = pixels(result.mask)
    assert (mask[28:68, 36:92] == 0).all()  # the original (inside its seam) is kept
    assert (mask[:24, :] == 255).all() and (mask[72:, :] == 255).all()  # the border is new
    assert (mask[:, :32] == 255).all() and (mask[:, 96:] == 255).all()
    assert 0 < mask[48, 33] < 255  # the seam fades


@pytest.mark.parametrize(
    ("direction", "size", "offset", "new_area"),
    [
        ("left", (192, 64), (64, 0), (0, 0, 64, 64)),
        ("right", (192, 64), (0, 0), (128, 0, 192, 64)),
        ("up", (128, 96), (0, 32), (0, 0, 128, 32)),
        ("down", (128, 96), (0, 0), (0, 64, 128, 96)),
    ],
)
def test_pan_extends_one_side_by_half_and_keeps_the_original_pixels(
    direction: canvas.Direction,
    size: tuple[int, int],
    offset: tuple[int, int],
    new_area: tuple[int, int, int, int],
) -> None:
    original = gradient(128, 64)
    result = canvas.pan(original, direction, grid=16, feather=4)
    assert result.size == size
    x, y = offset
    assert (pixels(result.image)[y : y + 64, x : x + 128] == pixels(original)).all()
    mask = pixels(result.mask)
    left, top, right, bottom = new_area
    assert (mask[top:bottom, left:right] == 255).all()
    kept = mask[y : y + 64, x : x + 128]
    # Only a seam of 4 px on the new side may change; the rest of the original is kept.
    seam = {
        "left": kept[:, 4:],
        "right": kept[:, :-4],
        "up": kept[4:, :],
        "down": kept[:-4, :],
    }[direction]
    assert (seam == 0).all()


def test_pan_sizes_stay_on_the_models_grid() -> None:
    assert canvas.pan_size(100, 64, "right", 16) == (100 + 64, 64)
    assert canvas.pan_size(128, 128, "up", 64) == (128, 192)


def test_a_pan_beyond_max_side_is_refused_with_the_sizes() -> None:
    canvas.check_pan(128, 128, "left", 16, max_side=192)
    with pytest.raises(BadInput, match="192 px wide; this bot paints at most 160 px a side"):
        canvas.check_pan(128, 128, "left", 16, max_side=160)
    with pytest.raises(BadInput, match="px tall"):
        canvas.check_pan(128, 128, "down", 16, max_side=160)


def test_user_masks_are_scaled_and_an_all_black_one_has_nothing_to_paint() -> None:
    mask = Image.new("RGB", (32, 32), "black")
    mask.paste((255, 255, 255), (0, 0, 16, 16))
    scaled = canvas.scale_mask(mask, (64, 48))
    assert scaled.mode == "L" and scaled.size == (64, 48)
    assert canvas.has_paint(scaled)
    assert not canvas.has_paint(Image.new("L", (64, 64), 0))
