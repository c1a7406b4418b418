"""Avatar presets: the guided /avatar builder's steps, and the framing template.

The steps and their options live in `bot/data/avatar_presets.toml`. An admin can add
options, styles or whole steps without code: a second TOML file in the same shape
(`[avatar] presets_file`) is merged over the built-in one; an option with an existing
value replaces it.

Every avatar is img2img over a neutral head-and-shoulders silhouette drawn here, at
high strength, so results come out centred and framed like a profile picture.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

from bot.config import ConfigError
from bot.validation import BadInput

DEFAULT_PRESETS_PATH = Path(__file__).parent / "data" / "avatar_presets.toml"
AVATAR_STEPS = ("gender", "hair_color", "hair_length", "eye_color", "beard", "style")
# High enough to repaint everything, low enough to keep the silhouette's framing.
AVATAR_STRENGTH = 0.9
# Discord allows 25 choices per option; a Telegram keyboard this size stays usable.
MAX_OPTIONS_PER_STEP = 25
MAX_LABEL_CHARS = 32
# Values travel in button data (at most 64 bytes), so they are short slugs.
_VALUE = re.compile(r"^[a-z0-9_-]{1,16}$")


@dataclass(frozen=True)
class AvatarOption:
    value: str  # stable id, e.g. "red"
    label: str  # what the button shows, e.g. "🔴 Red"
    prompt: str  # positive fragment with A1111 weights, e.g. "(red hair:1.2)"
    negative: str = ""  # added to the negative prompt when chosen


@dataclass(frozen=True)
class AvatarStep:
    key: str  # e.g. "hair_color"
    title: str  # the wizard's question
    options: list[AvatarOption]
    default: str  # value used when a choice for this step is not given

    def option(self, value: str) -> AvatarOption | None:
        return next((option for option in self.options if option.value == value), None)

    @property
    def values(self) -> list[str]:
        return [option.value for option in self.options]


@dataclass(frozen=True)
class AvatarPresets:
    steps: list[AvatarStep]
    prefix: str = ""  # positive text before the chosen fragments
    suffix: str = ""  # positive text after them
    negative: str = ""  # negative text every avatar gets
    source: str = field(default="", compare=False)  # file(s) it came from, for errors

    @classmethod
    def load(cls, path: Path, extra: Path | None = None) -> AvatarPresets:
        raw = _read_toml(path)
        source = str(path)
        if extra is not None:
            raw = _merge(raw, _read_toml(extra))
            source = f"{path} + {extra}"
        return _parse(raw, source)

    @classmethod
    def load_default(cls, extra: Path | None = None) -> AvatarPresets:
        """The built-in presets, with the admin's extra file merged over them."""
        return cls.load(DEFAULT_PRESETS_PATH, extra)

    def step(self, key: str) -> AvatarStep | None:
        return next((step for step in self.steps if step.key == key), None)

    def build(self, choices: dict[str, str]) -> tuple[str, str]:
        """The positive and negative prompts for these choices (step key -> value)."""
        keys = [step.key for step in self.steps]
        for key in choices:
            if key not in keys:
                raise BadInput(f"Unknown avatar choice '{key}'. Choices: {', '.join(keys)}.")
        chosen = []
        for step in self.steps:
            value = choices.get(step.key, step.default)
            option = step.option(value)
            if option is None:
                allowed = ", ".join(step.values)
                raise BadInput(f"Unknown {step.key} '{value}'. Allowed: {allowed}.")
            chosen.append(option)
        positive = [self.prefix, *(option.prompt for option in chosen), self.suffix]
        negative = [self.negative, *(option.negative for option in chosen)]
        return _join(positive), _join(negative)


def _join(fragments: list[str]) -> str:
    """Comma-join the non-empty fragments, each once."""
    return ", ".join(dict.fromkeys(f.strip() for f in fragments if f.strip()))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"avatar presets {path}: cannot read: {exc}") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"avatar presets {path}: not valid TOML: {exc}") from exc


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` over `base`: steps matched by key, options by value; new ones appended."""
    merged = {**base, **{k: v for k, v in extra.items() if k != "steps"}}
    steps = [dict(step) for step in base.get("steps", [])]
    for extra_step in extra.get("steps", []):
        if not isinstance(extra_step, dict):
            raise ConfigError("avatar presets: every [[steps]] entry must be a table")
        existing = next((s for s in steps if s.get("key") == extra_step.get("key")), None)
        if existing is None:
            steps.append(extra_step)
            continue
        options = list(existing.get("options", []))
        for option in extra_step.get("options", []):
            value = option.get("value") if isinstance(option, dict) else None
            index = next((i for i, o in enumerate(options) if o.get("value") == value), None)
            if index is None:
                options.append(option)
            else:
                options[index] = {**options[index], **option}
        existing.update({k: v for k, v in extra_step.items() if k != "options"})
        existing["options"] = options
    merged["steps"] = steps
    return merged


def _parse(raw: dict[str, Any], source: str) -> AvatarPresets:
    def fail(where: str, problem: str) -> ConfigError:
        return ConfigError(f"avatar presets {source}: {where}: {problem}")

    def text(table: dict[str, Any], key: str, where: str, *, required: bool) -> str:
        value = table.get(key, "")
        if not isinstance(value, str):
            raise fail(where, f"'{key}' must be a string")
        if required and not value.strip():
            raise fail(where, f"'{key}' is missing")
        return value.strip()

    steps = []
    for i, step_raw in enumerate(raw.get("steps", [])):
        where = f"steps[{i}]"
        if not isinstance(step_raw, dict):
            raise fail(where, "must be a table")
        key = text(step_raw, "key", where, required=True)
        where = f"step '{key}'"
        options = []
        for option_raw in step_raw.get("options", []):
            if not isinstance(option_raw, dict):
                raise fail(where, "every option must be a table")
            value = text(option_raw, "value", where, required=True)
            if not _VALUE.match(value):
                raise fail(where, f"value '{value}' must be 1-16 of a-z, 0-9, _ or -")
            label = text(option_raw, "label", f"{where} option '{value}'", required=True)
            if len(label) > MAX_LABEL_CHARS:
                raise fail(where, f"label '{label}' is longer than {MAX_LABEL_CHARS} characters")
            prompt = text(option_raw, "prompt", f"{where} option '{value}'", required=False)
            negative = text(option_raw, "negative", f"{where} option '{value}'", required=False)
            options.append(AvatarOption(value, label, prompt, negative))
        if not options:
            raise fail(where, "has no options")
        if len(options) > MAX_OPTIONS_PER_STEP:
            raise fail(where, f"has {len(options)} options; at most {MAX_OPTIONS_PER_STEP} fit")
        if len({o.value for o in options}) != len(options):
            raise fail(where, "two options share a value")
        default = text(step_raw, "default", where, required=False) or options[0].value
        if default not in {o.value for o in options}:
            raise fail(where, f"default '{default}' is not one of its options")
        title = text(step_raw, "title", where, required=False) or key.replace("_", " ").title()
        steps.append(AvatarStep(key, title, options, default))
    keys = [step.key for step in steps]
    if len(set(keys)) != len(keys):
        raise fail("steps", "two steps share a key")
    missing = [key for key in AVATAR_STEPS if key not in keys]
    if missing:
        raise fail("steps", f"missing step(s): {', '.join(missing)}")
    return AvatarPresets(
        steps=steps,
        prefix=text(raw, "prefix", "top level", required=False),
        suffix=text(raw, "suffix", "top level", required=False),
        negative=text(raw, "negative", "top level", required=False),
        source=source,
    )


def draw_template(width: int, height: int) -> Image.Image:
    """A neutral grey head-and-shoulders silhouette, centred, on a soft grey backdrop."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):  # light at the top, a little darker below: studio backdrop
        shade = round(205 - 30 * y / max(1, height - 1))
        draw.line([(0, y), (width, y)], fill=(shade, shade, shade + 3))
    unit = min(width, height)
    cx = width / 2
    body = (95, 95, 100)
    # Shoulders: a wide ellipse cut off by the bottom edge.
    shoulder_top = height - 0.30 * unit
    draw.ellipse(
        [cx - 0.46 * unit, shoulder_top, cx + 0.46 * unit, height + 0.35 * unit], fill=body
    )
    # Neck joining head and shoulders.
    draw.rectangle(
        [cx - 0.09 * unit, height / 2, cx + 0.09 * unit, shoulder_top + 0.05 * unit], fill=body
    )
    # Head: an upright oval, centred a little above the middle.
    head_cy = height / 2 - 0.06 * unit
    draw.ellipse(
        [cx - 0.17 * unit, head_cy - 0.22 * unit, cx + 0.17 * unit, head_cy + 0.22 * unit],
        fill=(110, 110, 115),
    )
    # Soft edges give img2img room to invent hair and clothes around the shape.
    return image.filter(ImageFilter.GaussianBlur(radius=max(1, unit // 60)))


def template_path(width: int, height: int) -> str:
    """Where the template for this size lives, relative to the data folder."""
    return f"inputs/avatar-template-{width}x{height}.png"


def ensure_template(data_dir: Path, width: int, height: int) -> str:
    """Write the template for this size once; return its path relative to `data_dir`.

    Blocking (drawing and PNG encoding): call it in a thread from async code.
    """
    relative = template_path(width, height)
    path = data_dir / relative
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written under a temporary name and renamed, so a concurrent reader never
        # sees half a file.
        partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        draw_template(width, height).save(partial, format="PNG")
        os.replace(partial, path)
    return relative
