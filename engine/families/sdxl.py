"""SDXL (base and fine-tunes such as Pony or Illustrious): CLIP-L and OpenCLIP-G side by
side, the pooled embedding of the second, a UNet with size micro-conditioning."""

from __future__ import annotations

from typing import Any

from engine.families.traits import FamilyTraits
from engine.samplers import DISCRETE, SAMPLER_NAMES

TRAITS = FamilyTraits(
    name="sdxl",
    label="SDXL",
    pipeline_class="StableDiffusionXLPipeline",
    denoiser="unet",
    default_sample_size=128,
    schedule=DISCRETE,
    samplers=tuple(SAMPLER_NAMES),
    default_sampler="DPM++ 2M Karras",
    default_steps=30,
    default_cfg=6.0,
    uses_negative=True,
    weighting=True,
    # SDXL was trained on the penultimate layer of both encoders; that is fixed.
    clip_skip=(1,),
)

# Live previews: latent channels -> RGB (engine/previews.py); SDXL's VAE differs from 1.5's.
PREVIEW_FACTORS = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)
PREVIEW_BIAS = (0.1084, -0.0175, -0.0011)


class Encoder:
    def __init__(self, pipe: Any, clip_skip: int) -> None:
        from engine.prompts import PromptEncoder

        layer = "PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED"
        self._clip_l = PromptEncoder(pipe.tokenizer, pipe.text_encoder, embeddings=layer)
        self._clip_g = PromptEncoder(pipe.tokenizer_2, pipe.text_encoder_2, embeddings=layer)

    def encode(self, prompt: str, negative: str) -> dict[str, Any]:
        import torch

        left = [self._clip_l.encode(text) for text in (prompt, negative)]
        right = [self._clip_g.encode(text) for text in (prompt, negative)]
        # Joined along the feature axis, so all four must be equally long; each pair is
        # padded on its own, so a prompt's conditioning never depends on its batch-mates.
        length = max(tensor.shape[1] for tensor in left + right)
        left, right = self._clip_l.pad(left, length), self._clip_g.pad(right, length)
        return {
            "prompt_embeds": torch.cat([left[0], right[0]], dim=-1),
            "negative_prompt_embeds": torch.cat([left[1], right[1]], dim=-1),
            "pooled_prompt_embeds": self._clip_g.pooled(prompt),
            "negative_pooled_prompt_embeds": self._clip_g.pooled(negative),
        }
