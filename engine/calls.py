"""One batch's pipeline call: the arguments it is given, and its pictures after it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from PIL import Image

from engine.images import paste_unmasked
from engine.planning import Batch


def call_arguments(
    batch: Batch, device: str, dtype: torch.dtype, step_end: Callable[..., dict]
) -> dict[str, Any]:
    """The pipeline's keyword arguments for `batch`, the conditioning on `device`.
    Built per attempt: fresh generators, so an OOM retry gives the same pictures."""
    # Seeded on the CPU: the same seed gives the same noise on any device.
    generators = [torch.Generator("cpu").manual_seed(spec.seed) for spec in batch.specs]
    arguments: dict[str, Any] = {
        key: value.to(device, dtype) for key, value in batch.conditioning.items()
    }
    arguments.update(
        num_inference_steps=batch.steps,
        guidance_scale=batch.specs[0].cfg,
        generator=generators,
        callback_on_step_end=step_end,
        output_type="pil",
    )
    if batch.mode != "img2img":
        arguments.update(width=batch.width, height=batch.height)
    if batch.mode != "text2img":
        arguments.update(image=batch.init_images, strength=batch.specs[0].strength)
    if batch.mode == "inpaint":
        arguments.update(mask_image=batch.masks)
    return arguments


def pasted_back(batch: Batch, pictures: list[Image.Image]) -> list[Image.Image]:
    """Inpainting (A1111 style): the unmasked original pasted back over each picture."""
    if batch.mode != "inpaint":
        return pictures
    return [
        paste_unmasked(picture, original, mask)
        for picture, original, mask in zip(pictures, batch.init_images, batch.masks, strict=True)
    ]
