"""Checks shared by the chat commands and the CLI: ranges, sizes, and untrusted images.

Every check raises `BadInput` with a short message that names the allowed range, fit
to show a user as it is. Values are refused, never clamped silently.
"""

from __future__ import annotations

import io
import math
import re
import warnings

from PIL import Image, UnidentifiedImageError

SEED_MAX = 2**32 - 1
CFG_RANGE = (0.0, 30.0)
COUNT_RANGE = (1, 4)
STRENGTH_RANGE = (0.05, 1.0)
MIN_SIDE = 64
# Decoded images larger than this are refused before Pillow allocates them.
MAX_DECODED_PIXELS = 40_000_000


class BadInput(ValueError):
    """Input a user must change; `str(exc)` is the message to show them."""


def check_range(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise BadInput(f"{name} must be a number between {_number(low)} and {_number(high)}")
    if not low <= value <= high:
        raise BadInput(
            f"{name} must be between {_number(low)} and {_number(high)} (got {_number(value)})"
        )


def _number(value: float) -> str:
    """Whole numbers in full (a seed limit of 4294967295, not 4.29497e+09)."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def check_steps(steps: int, max_steps: int) -> None:
    check_range("steps", steps, 1, max_steps)


def check_seed(seed: int) -> None:
    check_range("seed", seed, 0, SEED_MAX)


def check_cfg(cfg: float) -> None:
    check_range("cfg", cfg, *CFG_RANGE)


def check_count(count: int) -> None:
    check_range("count", count, *COUNT_RANGE)


def check_strength(strength: float) -> None:
    check_range("strength", strength, *STRENGTH_RANGE)


def check_size(width: int, height: int, max_side: int) -> None:
    check_range("width", width, MIN_SIDE, max_side)
    check_range("height", height, MIN_SIDE, max_side)


_SIZE = re.compile(r"^\s*(\d{2,5})\s*[x×*]\s*(\d{2,5})\s*$", re.IGNORECASE)
_ASPECT = re.compile(r"^\s*(\d{1,3})\s*:\s*(\d{1,3})\s*$")


def parse_size(text: str, *, base_width: int, base_height: int, max_side: int) -> tuple[int, int]:
    """`768x512` as it is, or an aspect ratio like `3:2` at about the model's base area."""
    if match := _SIZE.match(text):
        width, height = int(match[1]), int(match[2])
    elif match := _ASPECT.match(text):
        ratio_w, ratio_h = int(match[1]), int(match[2])
        if ratio_w == 0 or ratio_h == 0:
            raise BadInput("aspect ratio sides must be above 0, like 3:2")
        ratio = ratio_w / ratio_h
        if not 1 / 4 <= ratio <= 4:
            raise BadInput("aspect ratio must be between 1:4 and 4:1")
        width, height = size_for_aspect(
            ratio, base_width=base_width, base_height=base_height, max_side=max_side
        )
    else:
        raise BadInput(f"size must look like 768x512 or an aspect ratio like 3:2 (got {text!r})")
    check_size(width, height, max_side)
    return width, height


def size_for_aspect(
    ratio: float, *, base_width: int, base_height: int, max_side: int
) -> tuple[int, int]:
    """Width and height (multiples of 64) at about the base area for `ratio` = w / h."""
    area = base_width * base_height
    width = _round_to(math.sqrt(area * ratio), 64)
    height = _round_to(math.sqrt(area / ratio), 64)
    scale = min(1.0, max_side / max(width, height))
    return _round_to(width * scale, 64), _round_to(height * scale, 64)


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def decode_image(data: bytes, *, max_side: int) -> Image.Image:
    """Open untrusted image bytes safely: RGB, no decompression bomb, within `max_side`.

    Blocking (decoding is CPU work): call it in a thread from async code.
    """
    if not data:
        raise BadInput("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_DECODED_PIXELS:
                raise BadInput("that picture is too large (too many pixels)")
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInput("that picture is too large (too many pixels)") from None
    except UnidentifiedImageError:
        raise BadInput("that file is not a picture Atelier can read (PNG, JPEG or WebP)") from None
    except (OSError, SyntaxError, ValueError):
        raise BadInput("that picture is damaged and cannot be read") from None
    image = image.convert("RGB")
    if max(image.size) > max_side:
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image
