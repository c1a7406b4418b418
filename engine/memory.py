"""Running out of GPU memory: retry once with memory savers, then a clear refusal."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import torch
from PIL import Image

from engine.batching import OutOfMemory
from engine.loading import first_line, free_memory
from engine.types import EngineError

log = logging.getLogger(__name__)

OUT_OF_MEMORY_MESSAGE = (
    "out of GPU memory even with memory savers; try a smaller size or fewer images"
)


def call_with_memory_fallback(pipe: Any, call: Callable[[], list[Image.Image]]) -> Any:
    """Run `call`; on CUDA out-of-memory retry once with memory savers, then give up."""
    try:
        return _guarded(call)
    except torch.cuda.OutOfMemoryError:
        log.warning("out of GPU memory; retrying with attention slicing and VAE tiling")
    # Retrying outside the except block lets the failed attempt's traceback, and the
    # tensors its frames hold, be freed first.
    free_memory()
    try:
        with _memory_savers(pipe):
            return _guarded(call)
    except torch.cuda.OutOfMemoryError:
        pass
    free_memory()
    raise OutOfMemory(OUT_OF_MEMORY_MESSAGE)


def _guarded(call: Callable[[], list[Image.Image]]) -> list[Image.Image]:
    try:
        return call()
    except (EngineError, torch.cuda.OutOfMemoryError):
        raise
    except Exception as exc:
        # A pipeline failure must not take the engine down: report it as a job error.
        log.exception("generation failed")
        raise EngineError(f"generation failed: {first_line(exc)}") from None


@contextlib.contextmanager
def _memory_savers(pipe: Any) -> Iterator[None]:
    if hasattr(pipe, "enable_attention_slicing"):
        pipe.enable_attention_slicing()
    pipe.vae.enable_tiling()
    pipe.vae.enable_slicing()
    try:
        yield
    finally:
        # Back to full speed for the next job, which may be small.
        if hasattr(pipe, "disable_attention_slicing"):
            pipe.disable_attention_slicing()
        pipe.vae.disable_tiling()
        pipe.vae.disable_slicing()
