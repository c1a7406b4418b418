"""Inline parameters: options written into the prompt text, the way Telegram users
pass them (and Discord users may): `a red fox --seed 7 --steps 4 --sampler "Euler a"
--ar 3:2 --no blurry, text --n 2`.

Parsing only splits the text and reads numbers; ranges are checked later, once typed
options have been merged in (`bot/commands/generation.py`), so both kinds of input get
the same checks and messages.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.validation import BadInput

# Option name (as typed) -> field of `PromptParams`.
OPTION_FIELDS = {
    "ar": "size",
    "aspect": "size",
    "size": "size",
    "seed": "seed",
    "steps": "steps",
    "cfg": "cfg",
    "no": "negative",
    "neg": "negative",
    "negative": "negative",
    "sampler": "sampler",
    "n": "count",
    "count": "count",
    "model": "model",
    "strength": "strength",
}
# Shown in the message for an unknown option, in this order.
MAIN_OPTIONS = ("ar", "size", "seed", "steps", "cfg", "no", "sampler", "n", "model", "strength")
# Options whose value is everything up to the next option.
_RUN_ON_FIELDS = {"negative"}

# `--name`, or `—name` / `–name`: phones turn a typed `--` into a dash.
_MARKER = re.compile(r"(?:(?<=\s)|^)(?:--|[—–]-?)([A-Za-z][A-Za-z_-]*)(?=\s|$)")
_QUOTED = re.compile(r"^[\"“”„'‘’](.*?)[\"“”'‘’](?:\s+|$)", re.DOTALL)


@dataclass(frozen=True)
class PromptParams:
    """A prompt and the options given for it; None = not given."""

    prompt: str = ""
    negative: str | None = None
    seed: int | None = None
    steps: int | None = None
    cfg: float | None = None
    size: str | None = None  # "768x512" or an aspect like "3:2"
    sampler: str | None = None
    count: int | None = None
    model: str | None = None
    strength: float | None = None

    def with_overrides(self, **values: Any) -> PromptParams:
        """These values (typed options, say) win over the inline ones; None leaves a value."""
        given = {name: value for name, value in values.items() if value is not None}
        return dataclasses.replace(self, **given)


def parse(text: str, *, is_sampler: Callable[[str], bool] | None = None) -> PromptParams:
    """Split inline options out of `text`; raises BadInput for unknown or malformed ones.

    `is_sampler` tells a known sampler name apart, so an unquoted multi-word sampler
    (`--sampler DPM++ 2M Karras a red fox`) takes as many words as make a known name.
    """
    markers = list(_markers(text))
    prompt_parts = [text[: markers[0][0]] if markers else text]
    values: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for i, (_, value_start, name) in enumerate(markers):
        value_end = markers[i + 1][0] if i + 1 < len(markers) else len(text)
        field = OPTION_FIELDS.get(name.lower())
        if field is None:
            options = ", ".join(f"--{option}" for option in MAIN_OPTIONS)
            raise BadInput(f"Unknown option --{name}. Options: {options}.")
        if field in given_as:
            if given_as[field] != name.lower() and field == "size":
                raise BadInput("Use either --ar or --size, not both.")
            raise BadInput(f"--{name} is given twice.")
        given_as[field] = name.lower()
        raw = text[value_start:value_end].strip()
        if not raw:
            raise BadInput(f"--{name} needs a value, like {_EXAMPLES[field]}.")
        value, rest = _split_value(field, raw, is_sampler)
        values[field] = _convert(field, name, value)
        prompt_parts.append(rest)
    prompt = " ".join(part.strip() for part in prompt_parts if part.strip())
    return PromptParams(prompt=prompt, **values)


_EXAMPLES = {
    "size": "--ar 3:2 or --size 768x512",
    "seed": "--seed 1234",
    "steps": "--steps 30",
    "cfg": "--cfg 6",
    "negative": "--no blurry, text",
    "sampler": '--sampler "Euler a"',
    "count": "--n 4",
    "model": "--model sd15",
    "strength": "--strength 0.6",
}


def _markers(text: str) -> list[tuple[int, int, str]]:
    """(start of the marker, start of its value, option name) for each option."""
    found = []
    for match in _MARKER.finditer(text):
        dash_form = not match[0].startswith("--")
        # An ordinary dash in prose ("a cat —dog") is only an option if it names one.
        if dash_form and match[1].lower() not in OPTION_FIELDS:
            continue
        found.append((match.start(), match.end(), match[1]))
    return found


def _split_value(field: str, raw: str, is_sampler: Callable[[str], bool] | None) -> tuple[str, str]:
    """The option's value, and what follows it (which belongs to the prompt)."""
    if field in _RUN_ON_FIELDS:
        return _unquote(raw), ""
    if quoted := _QUOTED.match(raw):
        return quoted[1].strip(), raw[quoted.end() :]
    words = raw.split()
    if field == "sampler" and is_sampler is not None:
        # The longest run of words that names a sampler; the rest is prompt text.
        for length in range(len(words), 0, -1):
            candidate = " ".join(words[:length])
            if is_sampler(candidate):
                return candidate, " ".join(words[length:])
        return raw, ""
    return words[0], " ".join(words[1:])


def _unquote(value: str) -> str:
    quoted = _QUOTED.match(value)
    return quoted[1].strip() if quoted and quoted.end() == len(value) else value


def _convert(field: str, name: str, value: str) -> Any:
    if field in ("seed", "steps", "count"):
        try:
            return int(value)
        except ValueError:
            raise BadInput(f"--{name} must be a whole number (got {value!r}).") from None
    if field in ("cfg", "strength"):
        try:
            return float(value.replace(",", "."))
        except ValueError:
            raise BadInput(f"--{name} must be a number (got {value!r}).") from None
    return value
