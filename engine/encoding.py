"""Finishing pictures off the denoising thread: the safety check and the PNG.

Once a batch is denoised, its pictures still need the NSFW check and a PNG each
(tens of ms per 512² picture, hundreds for a batch of 1024² ones). Done on the
engine's main thread, the denoiser would sit idle meanwhile. Here one finisher thread
takes them while the main thread goes on to the next batch; results are collected
in the caller's order. One thread, not more: batches finish in the order they were
denoised, and the encoder keeps to the one core the torch threads leave free
(engine/threads.py). PNG encoding (zlib) releases the GIL, so it really runs beside
the denoiser.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from engine.types import GeneratedImage


@dataclass
class PendingImages:
    """Pictures of one `Engine.start` call, in spec order once finished."""

    count: int
    # Each batch's positions in the caller's list, and its pictures being finished.
    parts: list[tuple[list[int], Future[list[GeneratedImage]]]] = field(default_factory=list)

    def result(self) -> list[GeneratedImage]:
        """Wait for every batch; the first failure is raised again here."""
        results: dict[int, GeneratedImage] = {}
        for indices, future in self.parts:
            results.update(zip(indices, future.result(), strict=True))
        return [results[index] for index in range(self.count)]


class Finisher:
    """The one thread that finishes batches, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, finish: Callable[[], list[GeneratedImage]]) -> Future[list[GeneratedImage]]:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="engine-finisher")
            return self._pool.submit(finish)
