"""Stable Diffusion 1.x and 2.x: one CLIP text encoder, a UNet, A1111's samplers."""

from __future__ import annotations

from typing import Any

from engine.families.traits import FamilyTraits
from engine.samplers import DISCRETE, SAMPLER_NAMES

TRAITS = FamilyTraits(
    name="sd",
    label="SD 1.x/2.x",
    pipeline_class="StableDiffusionPipeline",
    denoiser="unet",
    default_sample_size=64,
    schedule=DISCRETE,
    samplers=tuple(SAMPLER_NAMES),
    default_sampler="Euler a",
    default_steps=20,
    default_cfg=7.0,
    uses_negative=True,
    weighting=True,
    # A1111's "Clip skip": 2 takes the penultimate layer (normalised, as A1111 does).
    clip_skip=(1, 2),
)

# Live previews: latent channels -> RGB, fitted on real pictures (as ComfyUI does), for
# a picture's rough colours while it paints without decoding it (engine/previews.py).
PREVIEW_FACTORS = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
PREVIEW_BIAS = (0.0, 0.0, 0.0)


class Encoder:
    def __init__(self, pipe: Any, clip_skip: int) -> None:
        from engine.prompts import PromptEncoder

        layer = "LAST" if clip_skip == 1 else "PENULTIMATE"
        self._clip = PromptEncoder(
            pipe.tokenizer, pipe.text_encoder, embeddings=f"{layer}_HIDDEN_STATES_NORMALIZED"
        )

    def encode(self, prompt: str, negative: str) -> dict[str, Any]:
        # Each pair is padded on its own, so a prompt's conditioning never depends on
        # what else shares the batch (pictures of different lengths run apart).
        positive, negative_embeds = self._clip.pad(
            [self._clip.encode(prompt), self._clip.encode(negative)]
        )
        return {"prompt_embeds": positive, "negative_prompt_embeds": negative_embeds}
