"""Batch planning: which specs run in one pipeline call, with their inputs ready.

Specs sharing a batch key run together, split further by the length of their prompt
encoding; each batch gets its sampler's scheduler, LoRAs, conditioning and decoded
init images and masks before anything is denoised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from engine.images import decode_image, decode_mask, round_size
from engine.loaded import LoadedModel, denoiser
from engine.loras import lora_hash
from engine.prompts import split_lora_tags
from engine.samplers import build_scheduler, canonical_sampler
from engine.speed import snap_to_bucket
from engine.steps import count_denoising_steps, steps_to_ask
from engine.types import EngineError, ImageSpec, Mode
from engine.upscaler import Upscaler


@dataclass
class Batch:
    """Specs that run in one pipeline call, with their inputs decoded and encoded."""

    indices: list[int]  # positions in the caller's list
    specs: list[ImageSpec]
    mode: Mode
    sampler: str
    width: int
    height: int
    steps: int  # inference steps asked of the pipeline
    total_steps: int  # denoising steps it will run (fewer for img2img)
    scheduler: Any  # built once per batch: some (DPM2) take most of a second to build
    loras: list[tuple[str, Path, float]] = field(default_factory=list)
    conditioning: dict[str, torch.Tensor] = field(default_factory=dict)
    init_images: list[Image.Image] = field(default_factory=list)
    masks: list[Image.Image] = field(default_factory=list)


def group_by_batch_key(specs: list[ImageSpec]) -> list[list[int]]:
    groups: dict[tuple[object, ...], list[int]] = {}
    for index, spec in enumerate(specs):
        groups.setdefault(spec.batch_key(), []).append(index)
    return list(groups.values())


def plan(
    model: LoadedModel,
    indices: list[int],
    specs: list[ImageSpec],
    *,
    upscaler: Upscaler,
    snap: bool,
) -> list[Batch]:
    """The batches for specs of one batch key: one per length of prompt encoding,
    so no picture's conditioning is padded for the sake of another. `snap`: sizes
    go to the compiled buckets ([engine] compile on CUDA)."""
    first = specs[indices[0]]
    try:
        sampler = canonical_sampler(first.sampler, model.traits.samplers)
    except ValueError as exc:
        raise EngineError(str(exc)) from None
    if first.steps < 1:
        raise EngineError("steps must be at least 1")
    if first.width < 1 or first.height < 1:
        raise EngineError("width and height must be positive")
    resize_only = first.upscale > 0 and first.strength == 0
    if first.mode != "text2img" and not (0.0 < first.strength <= 1.0 or resize_only):
        raise EngineError("strength must be above 0 and at most 1")
    width, height = first.width, first.height
    if snap:
        width, height = snap_to_bucket(width, height, model.info)
    width = round_size(width, model.size_multiple)
    height = round_size(height, model.size_multiple)
    if resize_only:
        return [resize_batch(indices, specs, sampler, (width, height), upscaler)]
    _, tags = split_lora_tags(first.prompt)
    loras = model.loras.resolve(tags)
    own_inpainter = denoiser(model.pipelines["inpaint"]) is not denoiser(
        model.pipelines["text2img"]
    )
    if loras and first.mode == "inpaint" and own_inpainter:
        raise EngineError("LoRAs do not apply to this model's inpainting checkpoint")
    # The prompt is encoded with the batch's LoRAs on: they may change the encoders.
    model.loras.apply(model.pipelines["text2img"], loras)
    lora_key = tuple((name, lora_hash(path), weight) for name, path, weight in loras)
    by_length: dict[tuple[object, ...], list[tuple[int, dict[str, torch.Tensor]]]] = {}
    for index in indices:
        spec = specs[index]
        prompt, _ = split_lora_tags(spec.prompt)
        negative, _ = split_lora_tags(spec.negative_prompt)
        conditioning = model.prompts.encode(model.encoder, prompt, negative, lora_key)
        shape = tuple((key, tuple(value.shape)) for key, value in conditioning.items())
        by_length.setdefault(shape, []).append((index, conditioning))
    batches = []
    for group in by_length.values():
        batch = Batch(
            indices=[index for index, _ in group],
            specs=[specs[index] for index, _ in group],
            mode=first.mode,
            sampler=sampler,
            width=width,
            height=height,
            steps=steps_to_ask(first),
            total_steps=0,
            scheduler=build_scheduler(sampler, model.scheduler_config, model.traits.schedule),
            loras=loras,
            conditioning={
                key: torch.cat([conditioning[key] for _, conditioning in group])
                for key in group[0][1]
            },
        )
        batch.total_steps = count_denoising_steps(batch, model.pipelines[batch.mode])
        for spec in batch.specs:
            if spec.init_image is not None:
                batch.init_images.append(input_picture(spec, (width, height), upscaler))
            if spec.mode == "inpaint" and spec.mask_image is not None:
                batch.masks.append(decode_mask(spec.mask_image, (width, height)))
        batches.append(batch)
    return batches


def input_picture(spec: ImageSpec, size: tuple[int, int], upscaler: Upscaler) -> Image.Image:
    """A spec's init image at `size`: enlarged by the upscaler for an upscale."""
    assert spec.init_image is not None
    if not spec.upscale:
        return decode_image(spec.init_image, size)
    return upscaler.upscale(decode_image(spec.init_image), size)


def resize_batch(
    indices: list[int],
    specs: list[ImageSpec],
    sampler: str,
    size: tuple[int, int],
    upscaler: Upscaler,
) -> Batch:
    """Upscales without a detail pass: nothing to encode or denoise."""
    chosen = [specs[index] for index in indices]
    batch = Batch(indices, chosen, "img2img", sampler, *size, 0, 0, None)
    batch.init_images = [input_picture(spec, size, upscaler) for spec in chosen]
    return batch
