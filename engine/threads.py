"""`[engine] threads`: how many threads torch computes with in the engine process.

torch takes every core by default. On a shared box the bot, the OS and anything else
then fight the engine for them, and a 0.4 s job can take seconds. Automatic (0): on
a CPU every core but one (kept for the bot process and the PNG encoder), on CUDA a
few, since the GPU does the work and the CPU threads only feed it.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

# Threads on CUDA: the host side only launches kernels and moves pictures.
CUDA_THREADS = 4


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_threads(configured: int, device: str, cores: int | None = None) -> int:
    """The thread count for `configured` (0: automatic) on `device` ("cpu", "cuda:0")."""
    if configured > 0:
        return configured
    cores = available_cores() if cores is None else cores
    if device.startswith("cuda"):
        return max(1, min(CUDA_THREADS, cores))
    return max(1, cores - 1)


def apply_threads(configured: int, device: str) -> int:
    """Set torch's intra-op thread count for this process; returns it."""
    import torch

    threads = resolve_threads(configured, device)
    torch.set_num_threads(threads)
    return torch.get_num_threads()
