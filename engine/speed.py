"""Speed options for CUDA ([engine] channels_last, fuse_qkv, compile), and the aspect
buckets that let a compiled denoiser compile once per bucket instead of once per size."""

from __future__ import annotations

import logging
import math
from typing import Any

from engine.inspect import ModelInfo
from engine.types import EngineSettings, Mode

log = logging.getLogger(__name__)

# Width:height ratios a compiled model paints at, each at about the native area.
BUCKET_RATIOS = (1.0, 4 / 3, 3 / 4, 3 / 2, 2 / 3, 16 / 9, 9 / 16)


def apply_speed_options(pipelines: dict[Mode, Any], settings: EngineSettings) -> None:
    """The options change the shared modules, so all three pipelines get them."""
    pipe = pipelines["text2img"]
    denoiser = pipe.unet if hasattr(pipe, "unet") else pipe.transformer
    if settings.channels_last:
        import torch

        denoiser.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if settings.fuse_qkv:
        if hasattr(denoiser, "fuse_qkv_projections"):
            denoiser.fuse_qkv_projections()
        else:
            log.warning("fuse_qkv: %s cannot fuse its projections", type(denoiser).__name__)
    if settings.compile:
        # In place (nn.Module.compile), so the img2img and inpaint pipelines that share
        # the module run the compiled one too. Fixed shapes: a recompile per bucket.
        denoiser.compile(mode="max-autotune-no-cudagraphs", dynamic=False)


def snap_to_bucket(width: int, height: int, info: ModelInfo) -> tuple[int, int]:
    """The bucket size nearest in aspect to width x height, at the model's native area."""
    ratio = width / height
    best = min(BUCKET_RATIOS, key=lambda bucket: abs(math.log(bucket / ratio)))
    area = info.width * info.height
    grid = max(64, info.size_multiple)
    snapped_width = max(grid, round(math.sqrt(area * best) / grid) * grid)
    snapped_height = max(grid, round(math.sqrt(area / best) / grid) * grid)
    return snapped_width, snapped_height
