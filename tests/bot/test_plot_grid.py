"""The plot grid: cells placed row by row, labels drawn on the margins."""

from __future__ import annotations

import pytest
from PIL import Image, ImageChops

from bot.plot_grid import BACKGROUND, GridAxis, draw_grid, font_px


def _cells(count: int, size: tuple[int, int] = (64, 64)) -> list[Image.Image | None]:
    return [Image.new("RGB", size, (30 * i, 200 - 20 * i, 90)) for i in range(count)]


def _has_ink(image: Image.Image) -> bool:
    blank = Image.new("RGB", image.size, BACKGROUND)
    return ImageChops.difference(image.convert("RGB"), blank).getbbox() is not None


def test_the_grid_is_the_cells_plus_margins_with_labels_in_them() -> None:
    cells = _cells(6)
    grid = draw_grid(cells, GridAxis("Steps", ["1", "2", "3"]), GridAxis("CFG Scale", ["4", "7"]))
    left = grid.width - 3 * 64
    top = grid.height - 2 * 64
    assert left > 0 and top > 0
    assert _has_ink(grid.crop((left, 0, grid.width, top)))  # the column labels
    assert _has_ink(grid.crop((0, top, left, grid.height)))  # the row labels
    for index, cell in enumerate(cells):
        row, column = divmod(index, 3)
        x0, y0 = left + column * 64, top + row * 64
        assert cell is not None
        placed = grid.crop((x0, y0, x0 + 64, y0 + 64))
        assert ImageChops.difference(placed, cell).getbbox() is None


def test_one_axis_has_no_left_margin_and_a_missing_cell_is_grey() -> None:
    cells = _cells(2)
    cells[1] = None
    grid = draw_grid(cells, GridAxis("Seed", ["1", "2"]))
    assert grid.width == 128
    top = grid.height - 64
    assert grid.getpixel((64 + 32, top + 32)) != BACKGROUND
    assert _has_ink(grid.crop((0, 0, 128, top)))


def test_a_title_adds_a_line_and_odd_sized_cells_share_the_largest_slot() -> None:
    cells: list[Image.Image | None] = [
        Image.new("RGB", (64, 32), "red"),
        Image.new("RGB", (32, 64)),
    ]
    plain = draw_grid(cells, GridAxis("Size", ["64x32", "32x64"]))
    titled = draw_grid(cells, GridAxis("Size", ["64x32", "32x64"]), title="Seed: 5")
    assert plain.width == titled.width == 128
    assert titled.height > plain.height > 64


def test_labels_scale_with_the_grid_so_a_chat_can_read_them() -> None:
    assert font_px(192) == font_px(64) == 14
    assert font_px(4 * 512) > 4 * 14 - 1


def test_a_wrong_number_of_cells_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        draw_grid(_cells(3), GridAxis("Seed", ["1", "2"]))
