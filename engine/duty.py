"""The engine's duty cycle: how much of the time it had work it spent denoising.

Measured where the work happens, around each pipeline call (the denoising loop and
the VAE decode: what occupies the GPU). The counter only grows; a bench reads it
before and after a run of queued jobs and divides by the wall time between
(`bench/duty_cycle.py`): whatever else runs between two pipeline calls — prompt
encoding, PNG encoding, the bot's bookkeeping, the pipe — shows as the gap.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator


class DutyMeter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._denoising = 0.0  # seconds inside pipeline calls, in total
        self._calls = 0

    @contextlib.contextmanager
    def denoising(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self._denoising += time.perf_counter() - started
                self._calls += 1

    def reading(self) -> dict[str, float]:
        """Seconds spent denoising and pipeline calls made, so far."""
        with self._lock:
            return {"denoising_s": self._denoising, "calls": self._calls}
