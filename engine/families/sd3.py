"""Stable Diffusion 3 and 3.5: CLIP-L, CLIP-G and T5 feeding an MMDiT transformer,
sampled by flow matching.

compel has no SD 3 support, so prompts reach the pipeline's own encoder as plain
text: weighting syntax is taken out, never read as literal brackets, and the CLIP
encoders see the first 77 tokens while T5 reads up to 256.
"""

from __future__ import annotations

from typing import Any

from engine.families.traits import FamilyTraits
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

# Live previews: the 16 latent channels -> RGB (engine/previews.py).
PREVIEW_FACTORS = (
    (-0.0922, -0.0175, 0.0749),
    (0.0311, 0.0633, 0.0954),
    (0.1994, 0.0927, 0.0458),
    (0.0856, 0.0339, 0.0902),
    (0.0587, 0.0272, -0.0496),
    (-0.0006, 0.1104, 0.0309),
    (0.0978, 0.0306, 0.0427),
    (-0.0042, 0.1038, 0.1358),
    (-0.0194, 0.0020, 0.0669),
    (-0.0488, 0.0130, -0.0268),
    (0.0922, 0.0988, 0.0951),
    (-0.0278, 0.0524, -0.0542),
    (0.0332, 0.0456, 0.0895),
    (-0.0069, -0.0030, -0.0810),
    (-0.0596, -0.0465, -0.0293),
    (-0.1448, -0.1463, -0.1189),
)
PREVIEW_BIAS = (0.2394, 0.2135, 0.1925)


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
