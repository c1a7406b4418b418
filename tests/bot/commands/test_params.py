"""Inline option parsing on its own: what is an option, what is prompt text."""

from __future__ import annotations

import pytest

from bot.commands.generation import is_sampler
from bot.commands.params import PromptParams, parse
from bot.validation import BadInput


def test_the_design_example() -> None:
    text = 'a red fox --seed 7 --steps 4 --sampler "Euler a" --ar 3:2 --no blurry --n 2'
    assert parse(text, is_sampler=is_sampler) == PromptParams(
        prompt="a red fox",
        seed=7,
        steps=4,
        sampler="Euler a",
        size="3:2",
        negative="blurry",
        count=2,
    )


def test_negative_runs_until_the_next_option() -> None:
    parsed = parse("a cat --no blurry, text, low quality --cfg 6 --model sd15 --strength 0.6")
    assert parsed.negative == "blurry, text, low quality"
    assert (parsed.cfg, parsed.model, parsed.strength) == (6.0, "sd15", 0.6)


def test_options_first_and_words_after_a_value_belong_to_the_prompt() -> None:
    parsed = parse("--seed 5 a red fox --size 768x512 in the snow")
    assert (parsed.prompt, parsed.seed, parsed.size) == ("a red fox in the snow", 5, "768x512")


@pytest.mark.parametrize("dash", ["—", "–", "—-"])
def test_phone_dashes_work_as_option_markers(dash: str) -> None:
    parsed = parse(f"a dog {dash}seed 3 {dash}no cats")
    assert (parsed.prompt, parsed.seed, parsed.negative) == ("a dog", 3, "cats")


def test_a_dash_in_prose_stays_in_the_prompt() -> None:
    for text in ("a cat — a dog", "a cat —dog", "a--b", "a cat -- dog"):
        assert parse(text).prompt == text


@pytest.mark.parametrize(
    ("text", "sampler", "prompt"),
    [
        ('x --sampler "DPM++ 2M Karras"', "DPM++ 2M Karras", "x"),
        ("x --sampler “Euler a” at dusk", "Euler a", "x at dusk"),  # iOS quotes
        ("x --sampler DPM++ 2M Karras at dusk", "DPM++ 2M Karras", "x at dusk"),
        ("x --sampler euler a", "euler a", "x"),
        ("x --sampler Nonsense Words", "Nonsense Words", "x"),  # refused later, by name
    ],
)
def test_sampler_names(text: str, sampler: str, prompt: str) -> None:
    parsed = parse(text, is_sampler=is_sampler)
    assert (parsed.sampler, parsed.prompt) == (sampler, prompt)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a --foo 1", "Unknown option --foo. Options: --ar, --size, --seed, --steps, --cfg, --no,"),
        ("a --seed", "--seed needs a value, like --seed 1234."),
        ("a --no", "--no needs a value, like --no blurry, text."),
        ("a --n two", "--n must be a whole number (got 'two')."),
        ("a --cfg high", "--cfg must be a number (got 'high')."),
        ("a --steps 4 --steps 5", "--steps is given twice."),
        ("a --ar 1:1 --size 64x64", "Use either --ar or --size, not both."),
    ],
)
def test_malformed_options_are_refused(text: str, message: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse(text)
    assert str(caught.value).startswith(message)


def test_typed_values_override_inline_ones_but_none_does_not() -> None:
    parsed = parse("a fox --seed 1 --steps 4").with_overrides(seed=9, steps=None, cfg=5.0)
    assert (parsed.seed, parsed.steps, parsed.cfg) == (9, 4, 5.0)
