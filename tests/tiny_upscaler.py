"""A tiny random-weight super-resolution model that spandrel detects, saved to a file.

ESRGAN (the architecture of 4x-UltraSharp and most community upscalers) with 8
features and one block instead of 64 and 23: a few thousand weights, milliseconds a tile.
"""

from __future__ import annotations

from pathlib import Path

import torch


def save_tiny_upscaler(path: Path, *, scale: int = 4, seed: int = 0) -> Path:
    """Write the model's state dict to `path` (.pth, or .safetensors by its suffix)."""
    from engine.upscaler import import_spandrel

    architectures = import_spandrel().architectures
    torch.manual_seed(seed)
    model = architectures.ESRGAN.ESRGAN(num_filters=8, num_blocks=1, scale=scale)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path
