"""A denoised picture finished into a `GeneratedImage`: its A1111 parameters and PNG.

Runs on the finisher thread (engine/encoding.py), beside the next batch's denoising.
"""

from __future__ import annotations

from PIL import Image

from engine.loaded import LoadedModel
from engine.loras import lora_hash
from engine.planning import Batch
from engine.png import ImageParameters, encode_png, format_parameters
from engine.types import GeneratedImage


def finish_picture(
    model: LoadedModel,
    batch: Batch,
    position: int,
    picture: Image.Image,
    nsfw: bool,
    upscaler_name: str,
) -> GeneratedImage:
    spec = batch.specs[position]
    parameters = format_parameters(
        ImageParameters(
            prompt=spec.prompt,
            # A negative prompt the family ignores did not make the picture.
            negative_prompt=spec.negative_prompt if model.traits.uses_negative else "",
            steps=spec.steps,
            sampler=batch.sampler,
            cfg=spec.cfg,
            seed=spec.seed,
            width=picture.width,
            height=picture.height,
            model=model.source.display_name,
            denoising_strength=spec.strength
            if batch.mode != "text2img" and batch.steps > 0
            else None,
            hires_upscale=spec.upscale or None,
            hires_upscaler=upscaler_name if spec.upscale else "",
            lora_hashes={name: lora_hash(path) for name, path, _ in batch.loras},
        )
    )
    return GeneratedImage(
        png=encode_png(picture, parameters),
        seed=spec.seed,
        width=picture.width,
        height=picture.height,
        parameters=parameters,
        nsfw=nsfw,
    )
