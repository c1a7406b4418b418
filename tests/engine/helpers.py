"""Small builders shared by the engine tests: specs, input pictures, decoded pixels."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from engine.pipelines import Engine
from engine.types import EngineSettings, ImageSpec

# Small and short so each generation takes a fraction of a second on a CPU.
BASE_SPEC = ImageSpec(prompt="a red fox", seed=1, steps=2, width=64, height=64)


def make_spec(**changes: object) -> ImageSpec:
    return replace(BASE_SPEC, **changes)


def load_engine(
    model: Path | str, *, models: dict[str, str] | None = None, nsfw_classifier: str = ""
) -> Engine:
    settings = EngineSettings(device="cpu", models=models or {}, nsfw_classifier=nsfw_classifier)
    engine = Engine(settings)
    engine.load(str(model))
    return engine


def pixels(png: bytes) -> np.ndarray:
    """RGB pixels as signed ints, so differences do not wrap around."""
    with Image.open(io.BytesIO(png)) as picture:
        return np.asarray(picture.convert("RGB")).astype(np.int16)


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def gradient(width: int = 64, height: int = 64, blue: int = 128) -> np.ndarray:
    """A colourful input picture: red grows to the right, green downwards."""
    array = np.zeros((height, width, 3), dtype=np.uint8)
    array[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    array[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    array[..., 2] = blue
    return array
