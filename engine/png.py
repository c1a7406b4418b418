"""PNG files carrying AUTOMATIC1111's `parameters` text, so other tools can read them."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from PIL import Image
from PIL.PngImagePlugin import PngInfo


@dataclass(frozen=True)
class ImageParameters:
    """What made one picture, as A1111 writes it below the prompt."""

    prompt: str
    negative_prompt: str
    steps: int
    sampler: str
    cfg: float
    seed: int
    width: int
    height: int
    model: str
    # Set for img2img and inpaint only.
    denoising_strength: float | None = None
    # Set for upscales: the factor and the upscaler's name ("Lanczos" or the model file's).
    hires_upscale: float | None = None
    hires_upscaler: str = ""
    # LoRA name -> A1111 short hash, for the LoRAs the prompt's tags turned on.
    lora_hashes: dict[str, str] = field(default_factory=dict)


def format_number(value: float) -> str:
    """A1111 style: 7.0 -> "7", 7.5 -> "7.5"."""
    return f"{value:g}"


def format_parameters(params: ImageParameters) -> str:
    lines = [params.prompt]
    if params.negative_prompt:
        lines.append(f"Negative prompt: {params.negative_prompt}")
    fields = [
        f"Steps: {params.steps}",
        f"Sampler: {params.sampler}",
        f"CFG scale: {format_number(params.cfg)}",
        f"Seed: {params.seed}",
        f"Size: {params.width}x{params.height}",
        f"Model: {params.model}",
    ]
    if params.denoising_strength is not None:
        fields.append(f"Denoising strength: {format_number(params.denoising_strength)}")
    if params.hires_upscale is not None:
        fields.append(f"Hires upscale: {format_number(params.hires_upscale)}")
        fields.append(f"Hires upscaler: {params.hires_upscaler}")
    if params.lora_hashes:
        # As A1111 writes it; the `<lora:...>` tags stay in the prompt line above.
        hashes = ", ".join(f"{name}: {digest}" for name, digest in params.lora_hashes.items())
        fields.append(f'Lora hashes: "{hashes}"')
    lines.append(", ".join(fields))
    return "\n".join(lines)


# zlib level 1: about a sixth of the default level's (6) time on generated pictures,
# for files some 10 % larger, which chats re-encode anyway. The level changes only
# the pixel data's compression; the `parameters` chunk is written the same.
FAST_COMPRESS_LEVEL = 1


def encode_png(
    image: Image.Image, parameters: str, compress_level: int = FAST_COMPRESS_LEVEL
) -> bytes:
    info = PngInfo()
    info.add_text("parameters", parameters)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=compress_level)
    return buffer.getvalue()
