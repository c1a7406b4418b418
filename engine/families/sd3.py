"""Stable Diffusion 3 and 3.5: CLIP-L, CLIP-G and T5 feeding an MMDiT transformer,
sampled by flow matching.

compel has no SD 3 support, so prompts reach the pipeline's own encoder as plain
text: weighting syntax is taken out, never read as literal brackets, and the CLIP
encoders see the first 77 tokens while T5 reads up to 256.
"""

from __future__ import annotations

from typing import Any

from engine.families import FamilyTraits
from engine.samplers import FLOW

TRAITS = FamilyTraits(
    name="sd3",
    label="SD 3/3.5",
    pipeline_class="StableDiffusion3Pipeline",
    denoiser="transformer",
    default_sample_size=128,
    schedule=FLOW,
    samplers=("Euler", "Euler a", "Euler Karras", "Euler Beta", "Heun"),
    default_sampler="Euler",
    default_steps=28,
    default_cfg=4.5,
    uses_negative=True,
    weighting=False,
    latent_multiple=2,  # the transformer's 2x2 patches
)


class Encoder:
    def __init__(self, pipe: Any, clip_skip: int) -> None:
        self._pipe = pipe

    def encode(self, prompt: str, negative: str) -> dict[str, Any]:
        import torch

        from engine.prompts import plain_text

        with torch.no_grad():
            positive, negative_embeds, pooled, negative_pooled = self._pipe.encode_prompt(
                prompt=plain_text(prompt),
                prompt_2=None,
                prompt_3=None,
                negative_prompt=plain_text(negative),
                do_classifier_free_guidance=True,
                device=self._pipe.text_encoder.device,
            )
        return {
            "prompt_embeds": positive,
            "negative_prompt_embeds": negative_embeds,
            "pooled_prompt_embeds": pooled,
            "negative_pooled_prompt_embeds": negative_pooled,
        }
