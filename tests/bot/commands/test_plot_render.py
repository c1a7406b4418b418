"""A finished plot's caption and buttons."""

from __future__ import annotations

from bot.commands import button_data, plot_render
from bot.jobs.plots import Plot, PlotAxis
from bot.records import GenerationRequest, Job, ResultImage


def _grid_job(grids: int = 1) -> Job:
    request = GenerationRequest(
        kind="plot", prompt="a fox " * 400, negative="", model="tiny", seed=3, steps=4,
        cfg=7.0, width=64, height=64, sampler="Euler a",
    )  # fmt: skip
    images = [ResultImage(f"images/g-{n}.png", 3, "") for n in range(grids)]
    return Job(id="gridjob123", platform="telegram", user_id="1", user_name="a",
               request=request, images=images)  # fmt: skip


def _plot(columns: int, rows: int) -> Plot:
    axes = (
        PlotAxis("x", "seed", "Seed", tuple(str(n) for n in range(columns))),
        PlotAxis("y", "steps", "Steps", tuple(str(n + 1) for n in range(rows))),
    )
    return Plot("gridjob123", axes, tuple(f"c{n}" for n in range(columns * rows)))


def test_up_to_twenty_cells_each_get_a_button_in_rows_of_five() -> None:
    rows = plot_render.buttons(_grid_job(), _plot(4, 4))
    assert [len(row) for row in rows] == [5, 5, 5, 1, 2]
    cells = [button for row in rows[:-1] for button in row]
    assert [b.label for b in cells] == [f"U{n}" for n in range(1, 17)]
    pressed = button_data.decode(cells[15].data)
    assert pressed is not None and (pressed.action, pressed.index) == ("cell", 15)
    assert [b.label for b in rows[-1]] == ["📄 PNG", "🗑 Delete"]


def test_more_cells_than_buttons_get_one_file_and_z_grids_a_png_each() -> None:
    rows = plot_render.buttons(_grid_job(grids=2), _plot(5, 5))
    assert [b.label for b in rows[0]] == ["🗂 Cells"]
    pressed = button_data.decode(rows[0][0].data)
    assert pressed is not None and pressed.action == "cells"
    assert [b.label for b in rows[-1]] == ["📄 1", "📄 2", "🗑 Delete"]
    assert sum(len(row) for row in rows) <= 25  # Discord's limit


def test_the_caption_keeps_the_axes_and_settings_within_telegram_s_limit() -> None:
    caption = plot_render.caption(_grid_job(), _plot(2, 3))
    assert len(caption.encode("utf-16-le")) // 2 <= 1024
    assert "X: Seed 0, 1 · Y: Steps 1, 2, 3" in caption
    assert caption.endswith("Seed: 3 · Model: tiny")
