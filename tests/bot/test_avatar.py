"""Avatar presets: every option builds, the negative matches, admins can extend the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from bot.avatar import (
    AVATAR_STEPS,
    MAX_OPTIONS_PER_STEP,
    AvatarPresets,
    draw_template,
    ensure_template,
)
from bot.config import ConfigError
from bot.validation import BadInput

PRESETS = AvatarPresets.load_default()


def test_steps_come_in_wizard_order() -> None:
    assert [step.key for step in PRESETS.steps] == list(AVATAR_STEPS)
    for step in PRESETS.steps:
        assert step.title
        assert 2 <= len(step.options) <= MAX_OPTIONS_PER_STEP
        # Callback data must stay short: values are small slugs.
        assert all(len(option.value.encode()) <= 16 for option in step.options)


@pytest.mark.parametrize(
    ("key", "value"),
    [(step.key, option.value) for step in PRESETS.steps for option in step.options],
)
def test_every_option_builds_with_its_fragments(key: str, value: str) -> None:
    option = PRESETS.step(key).option(value)  # type: ignore[union-attr]
    assert option is not None
    prompt, negative = PRESETS.build({key: value})
    assert option.prompt in prompt
    if option.negative:
        assert option.negative in negative
    # The framing words and the shared negative are always there.
    assert PRESETS.prefix in prompt
    assert PRESETS.negative in negative


def test_a_full_choice_builds_weighted_prompt_and_matching_negative() -> None:
    prompt, negative = PRESETS.build(
        {
            "gender": "man",
            "hair_color": "red",
            "hair_length": "short",
            "eye_color": "green",
            "beard": "none",
            "style": "anime",
        }
    )
    assert "(red hair:1.2)" in prompt
    assert "(green eyes:1.1)" in prompt
    assert "(anime style:1.3)" in prompt
    assert "beard, stubble" in negative
    assert "photo, realistic" in negative
    # Nothing appears twice in the comma-joined fragments.
    fragments = [f.strip() for f in negative.split(",")]
    assert len(fragments) == len(set(fragments))


def test_missing_choices_take_the_step_default() -> None:
    prompt, _ = PRESETS.build({})
    for step in PRESETS.steps:
        default = step.option(step.default)
        assert default is not None and default.prompt in prompt


def test_unknown_value_names_the_allowed_ones() -> None:
    with pytest.raises(BadInput) as caught:
        PRESETS.build({"hair_color": "plaid"})
    message = str(caught.value)
    assert "plaid" in message
    assert "black" in message and "blonde" in message


def test_unknown_step_names_the_steps() -> None:
    with pytest.raises(BadInput) as caught:
        PRESETS.build({"hat": "yes"})
    assert "gender" in str(caught.value) and "style" in str(caught.value)


def test_extra_file_adds_a_style_and_replaces_an_option(tmp_path: Path) -> None:
    extra = tmp_path / "more.toml"
    extra.write_text(
        """
[[steps]]
key = "style"

  [[steps.options]]
  value = "claymation"
  label = "🧱 Clay"
  prompt = "(claymation:1.3)"
  negative = "photo"

[[steps]]
key = "hair_color"

  [[steps.options]]
  value = "red"
  label = "🔴 Ginger"
  prompt = "(ginger hair:1.3)"

[[steps]]
key = "glasses"
title = "Glasses?"

  [[steps.options]]
  value = "none"
  label = "🚫 None"
  prompt = ""

  [[steps.options]]
  value = "round"
  label = "👓 Round"
  prompt = "(round glasses:1.2)"
""",
        encoding="utf-8",
    )
    presets = AvatarPresets.load_default(extra)
    style = presets.step("style")
    assert style is not None and "claymation" in style.values
    assert "anime" in style.values  # built-in options stay
    prompt, negative = presets.build({"style": "claymation", "glasses": "round"})
    assert "(claymation:1.3)" in prompt and "(round glasses:1.2)" in prompt
    assert "photo" in negative
    red, _ = presets.build({"hair_color": "red"})
    assert "(ginger hair:1.3)" in red and "(red hair:1.2)" not in red
    assert [step.key for step in presets.steps][-1] == "glasses"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            '[[steps]]\nkey = "style"\n[[steps.options]]\nvalue = "Bad Value!"\nlabel = "x"\n',
            "value",
        ),
        ('[[steps]]\nkey = "style"\n[[steps.options]]\nvalue = "x"\n', "label"),
        ('[[steps]]\nkey = "new"\n', "no options"),
        ("steps = [ oops", "not valid TOML"),
    ],
)
def test_broken_extra_file_is_a_clear_config_error(tmp_path: Path, body: str, problem: str) -> None:
    extra = tmp_path / "broken.toml"
    extra.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        AvatarPresets.load_default(extra)
    assert problem in str(caught.value)
    assert "broken.toml" in str(caught.value)


def test_template_is_a_centred_silhouette_on_grey() -> None:
    image = draw_template(128, 96)
    assert image.size == (128, 96) and image.mode == "RGB"
    grey = image.convert("L")
    corner = grey.getpixel((2, 2))
    head = grey.getpixel((64, 40))
    shoulders = grey.getpixel((64, 92))
    assert corner > 170  # light backdrop
    assert head < corner - 40 and shoulders < corner - 40
    # Left and right halves mirror each other: the figure is centred.
    assert abs(grey.getpixel((30, 85)) - grey.getpixel((97, 85))) < 8


def test_template_is_written_once(tmp_path: Path) -> None:
    relative = ensure_template(tmp_path, 64, 64)
    assert relative == "inputs/avatar-template-64x64.png"
    path = tmp_path / relative
    first = path.stat().st_mtime_ns
    assert ensure_template(tmp_path, 64, 64) == relative
    assert path.stat().st_mtime_ns == first
    with Image.open(path) as image:
        assert image.size == (64, 64)
