"""`[engine] max_batch = "auto"`: how many pictures one pipeline call paints.

On a CPU the UNet is compute-bound: a batch of 8 paints no faster than 8 calls one
by one (0.96-0.98x measured), yet every picture of it waits for the last. So "auto"
is 1 there. On CUDA a batch fills the GPU: "auto" takes as many pictures as the free
memory is estimated to hold at that size, and when a batch still runs out of memory
it halves, and remembers that ceiling for the size.

Nothing here imports torch at module level: the bot reads `scheduler_limit`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.types import EngineError, ImageSpec

AUTO = 0  # max_batch as the engine is told it: the engine decides per size
# Pictures a batch never goes over on CUDA, and what the scheduler groups up to.
AUTO_CAP = 8
# Denoising memory per output pixel per picture at 2 bytes a value (fp16), with
# classifier-free guidance's doubled batch: ~1.1 GB for SD 1.5 at 512², ~4.3 GB for
# SDXL at 1024² (SDPA attention). An estimate; an OOM corrects it (see BatchPolicy).
BYTES_PER_PIXEL_FP16 = 4096
# Share of the free memory a batch is planned to use: the rest absorbs the estimate's error.
HEADROOM = 0.8


class OutOfMemory(EngineError):
    """Out of GPU memory even with memory savers (engine.memory)."""


def scheduler_limit(max_batch: int | str, *, gpu: bool) -> int:
    """Pictures the scheduler groups into one engine call: the configured number,
    or for "auto" 1 on a CPU (batching does not pay there) and AUTO_CAP on a GPU."""
    if isinstance(max_batch, int):
        return max_batch
    return AUTO_CAP if gpu else 1


def gpu_visible() -> bool:
    """Whether this machine shows an NVIDIA GPU, without importing torch (the bot)."""
    return os.path.exists("/dev/nvidiactl") and os.environ.get("CUDA_VISIBLE_DEVICES") != ""


def estimate_batch(free_bytes: int, width: int, height: int, value_bytes: int = 2) -> int:
    """Pictures of width x height that fit in free_bytes (at least 1, at most AUTO_CAP)."""
    per_picture = width * height * BYTES_PER_PIXEL_FP16 * value_bytes / 2
    fits = math.floor(free_bytes * HEADROOM / per_picture)
    return max(1, min(AUTO_CAP, fits))


@dataclass
class BatchPolicy:
    """The batch size per spec: fixed, or "auto" (see the module's docstring)."""

    fixed: int = 0  # > 0: always this many; AUTO: decided here
    device: str = "cpu"
    # Free GPU memory in bytes, read when a batch is planned (CUDA, auto only).
    free_memory: Callable[[], int] | None = None
    value_bytes: int = 2
    # (width, height) -> the largest batch not known to run out of memory.
    ceilings: dict[tuple[int, int], int] = field(default_factory=dict)

    def size_for(self, spec: ImageSpec) -> int:
        if self.fixed > 0:
            return self.fixed
        if not self.device.startswith("cuda") or self.free_memory is None:
            return 1
        size = estimate_batch(self.free_memory(), spec.width, spec.height, self.value_bytes)
        return min(size, self.ceilings.get((spec.width, spec.height), AUTO_CAP))

    def back_off(self, spec: ImageSpec, size: int) -> bool:
        """A batch of `size` ran out of memory: halve it for this size from now on.
        False when there is nothing left to halve (or the size is fixed)."""
        if self.fixed > 0 or size <= 1:
            return False
        self.ceilings[(spec.width, spec.height)] = size // 2
        return True


def batch_policy(max_batch: int, device: str, dtype_bytes: int = 2) -> BatchPolicy:
    """The engine process's policy for `max_batch` (AUTO or a number) on `device`."""
    if max_batch > 0 or not device.startswith("cuda"):
        return BatchPolicy(fixed=max_batch, device=device)
    return BatchPolicy(
        device=device, free_memory=lambda: cuda_free_bytes(device), value_bytes=dtype_bytes
    )


def cuda_free_bytes(device: str) -> int:
    """Free memory on the GPU, counting what torch's allocator holds but does not use."""
    import torch

    free, _total = torch.cuda.mem_get_info(torch.device(device))
    unused = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return int(free + unused)
