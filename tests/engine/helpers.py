"""Small builders shared by the engine tests: specs, input pictures, decoded pixels."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
from PIL import Image

from engine.pipelines import Engine
from engine.types import EngineSettings, ImageSpec
from engine.worker import Done, EngineWorker, Shutdown

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


@dataclass
class ServedWorker:
    """The client's end of the pipe to an engine worker served in a thread."""

    conn: Connection

    def receive(self, timeout: float) -> object:
        assert self.conn.poll(timeout), "the engine did not answer"
        return self.conn.recv()


@contextlib.contextmanager
def serve_worker(model: Path, max_batch: int = 1) -> Iterator[ServedWorker]:
    """`EngineWorker.serve` in a thread of this process (the engine process's main
    loop, without the process), started and ready."""
    ours, theirs = Pipe(duplex=True)
    settings = EngineSettings(device="cpu", models={"tiny": str(model)}, threads=1)
    thread = threading.Thread(target=EngineWorker(theirs, max_batch).serve, args=(settings,))
    thread.start()
    served = ServedWorker(ours)
    try:
        assert isinstance(served.receive(120), Done)  # started
        yield served
    finally:
        ours.send(Shutdown())
        thread.join(60)
        ours.close()
