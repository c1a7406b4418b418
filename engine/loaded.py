"""A loaded model as the engine holds it, and the helpers that read its pipelines."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from engine.families import FamilyTraits
from engine.inspect import ModelInfo
from engine.loading import ModelSource
from engine.loras import LoraSet
from engine.previews import LatentPreview
from engine.prompts import EncodingCache
from engine.types import Mode


@dataclass
class LoadedModel:
    source: ModelSource
    traits: FamilyTraits
    info: ModelInfo
    pipelines: dict[Mode, Any]  # text2img, img2img, inpaint over one set of weights
    # The model's own scheduler config: samplers replace `pipe.scheduler` per call.
    scheduler_config: Any
    encoder: Any  # the family's prompt encoder
    # Width and height must be multiples of this: the VAE's downscale times the
    # denoiser's own (UNet downsamplings, transformer patches), and of 8.
    size_multiple: int
    loras: LoraSet
    prompts: EncodingCache = field(default_factory=EncodingCache)
    preview: LatentPreview | None = None  # live previews: latents -> small RGB


def denoiser(pipe: Any) -> Any:
    return pipe.unet if hasattr(pipe, "unet") else pipe.transformer


def size_multiple(pipe: Any, traits: FamilyTraits) -> int:
    if hasattr(pipe, "unet"):
        latent = 2 ** (len(pipe.unet.config.block_out_channels) - 1)
    else:
        latent = traits.latent_multiple
    return math.lcm(8, pipe.vae_scale_factor * latent)


def moved(model: LoadedModel, device: str) -> LoadedModel:
    if denoiser(model.pipelines["text2img"]).device.type != torch.device(device).type:
        model.prompts.clear()  # encodings on the old device
        for pipe in model.pipelines.values():
            pipe.to(device)
    return model
