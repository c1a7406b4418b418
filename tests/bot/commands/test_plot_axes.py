"""/plot's parsing: axes out of the text, values and ranges, the cells they make."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.commands import plot_axes
from bot.commands.params import PromptParams
from bot.validation import BadInput


def test_axes_come_out_of_the_text_and_the_rest_is_the_prompt() -> None:
    text = 'a lighthouse --steps 4 --x steps=10,20 --y "sampler=Euler a,DDIM" --seed 3'
    rest, axes = plot_axes.split_axes(text)
    assert rest == "a lighthouse --steps 4 --seed 3"
    assert axes == {"x": "steps=10,20", "y": "sampler=Euler a,DDIM"}


def test_an_unquoted_value_runs_to_the_next_option() -> None:
    rest, axes = plot_axes.split_axes("a fox --x sampler=Euler a, DPM++ 2M --no blurry")
    assert axes == {"x": "sampler=Euler a, DPM++ 2M"}
    assert rest == "a fox --no blurry"


def test_phone_dashes_work_as_markers() -> None:
    rest, axes = plot_axes.split_axes("a fox —x steps=1,2 —seed 4")
    assert axes == {"x": "steps=1,2"} and rest == "a fox —seed 4"


def test_an_axis_given_twice_is_refused() -> None:
    with pytest.raises(BadInput, match="--x is given twice"):
        plot_axes.split_axes("a fox --x steps=1,2 --x cfg=3")


def test_ranges_expand_for_whole_numbers_and_floats() -> None:
    assert plot_axes.parse_axis("x", "steps=10-40:10", 16).values == ("10", "20", "30", "40")
    assert plot_axes.parse_axis("x", "cfg=4-5:0.5", 16).values == ("4", "4.5", "5")
    assert plot_axes.parse_axis("x", "seed=1-3, 9", 16).values == ("1", "2", "3", "9")
    assert plot_axes.parse_axis("y", "prompt=fox,cat", 16).values == ("fox", "cat")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("colour=red,blue", "Unknown axis kind 'colour'"),
        ("steps", "needs a kind and values"),
        ("steps=", "at least one value"),
        ("steps=10,,20", "empty value"),
        ("steps=ten", "'ten' is not a whole number"),
        ("cfg=high", "not a number"),
        ("steps=40-10:10", "a range goes up"),
        ("steps=1-2:0.5", "whole numbers"),
    ],
)
def test_bad_axes_are_refused_with_the_reason(raw: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        plot_axes.parse_axis("x", raw, 16)


def test_a_huge_range_is_refused_before_it_is_expanded() -> None:
    with pytest.raises(plot_axes.TooManyCells):
        plot_axes.parse_axis("x", "seed=1-1000000000", 16)


def test_axes_need_an_x_and_each_kind_once() -> None:
    with pytest.raises(BadInput, match="at least an X axis"):
        plot_axes.axes_of({"y": "steps=1,2"}, 16)
    with pytest.raises(BadInput, match="Steps is on two axes"):
        plot_axes.axes_of({"x": "steps=1,2", "y": "steps=3"}, 16)
    with pytest.raises(BadInput, match="--z needs a --y"):
        plot_axes.axes_of({"x": "steps=1,2", "z": "seed=3"}, 16)


def test_cells_go_row_by_row_and_prompt_sr_replaces_the_first_value() -> None:
    axes = plot_axes.axes_of({"x": "prompt=fox,cat,owl", "y": "cfg=4,7"}, 16)
    cells = plot_axes.cells_of(axes)
    assert plot_axes.cell_count(axes) == len(cells) == 6
    assert cells[:4] == [
        {"prompt": "fox", "cfg": "4"},
        {"prompt": "cat", "cfg": "4"},
        {"prompt": "owl", "cfg": "4"},
        {"prompt": "fox", "cfg": "7"},
    ]
    base = PromptParams(prompt="a red fox in the snow, fox tracks", seed=5)
    params = [plot_axes.cell_params(base, cell, "fox") for cell in cells]
    assert params[1].prompt == "a red cat in the snow, cat tracks"
    assert params[1].cfg == 4.0 and params[1].seed == 5
    assert params[5].prompt == "a red owl in the snow, owl tracks" and params[5].cfg == 7.0


@given(
    x=st.lists(st.integers(1, 50), min_size=1, max_size=5),
    y=st.lists(st.integers(0, 30), min_size=1, max_size=4),
)
def test_every_combination_is_one_cell(x: list[int], y: list[int]) -> None:
    typed = {"x": "steps=" + ",".join(map(str, x)), "y": "cfg=" + ",".join(map(str, y))}
    cells = plot_axes.cells_of(plot_axes.axes_of(typed, 100))
    assert len(cells) == len(x) * len(y)
    for index, cell in enumerate(cells):
        row, column = divmod(index, len(x))
        assert cell == {"steps": str(x[column]), "cfg": str(y[row])}
