"""Flux.1 (dev and schnell): CLIP's pooled output and T5's hidden states feeding a
double/single-stream transformer, sampled by flow matching.

Flux is guidance-distilled: it has no negative prompt (one given is ignored, and the
user is told), and `cfg` is dev's distilled guidance, which schnell does not read.
Prompts go through compel (its Flux support): A1111 weights reach T5.
"""

from __future__ import annotations

from typing import Any

from engine.families.traits import FamilyTraits
from engine.samplers import FLOW

TRAITS = FamilyTraits(
    name="flux",
    label="Flux.1",
    pipeline_class="FluxPipeline",
    denoiser="transformer",
    default_sample_size=128,
    schedule=FLOW,
    samplers=("Euler", "Euler a", "Euler Karras", "Euler Beta"),
    default_sampler="Euler",
    default_steps=28,
    default_cfg=3.5,
    uses_negative=False,
    weighting=True,
    latent_multiple=2,  # latents are packed 2x2
)

# Schnell, the timestep-distilled model, has no guidance embedding.
SCHNELL_STEPS = 4
SCHNELL_CFG = 0.0

# Live previews: the 16 latent channels -> RGB (engine/previews.py), once unpacked.
PREVIEW_FACTORS = (
    (-0.0346, 0.0244, 0.0681),
    (0.0034, 0.0210, 0.0687),
    (0.0275, -0.0668, -0.0433),
    (-0.0174, 0.0160, 0.0617),
    (0.0859, 0.0721, 0.0329),
    (0.0004, 0.0383, 0.0115),
    (0.0405, 0.0861, 0.0915),
    (-0.0236, -0.0185, -0.0259),
    (-0.0245, 0.0250, 0.1180),
    (0.1008, 0.0755, -0.0421),
    (-0.0515, 0.0201, 0.0011),
    (0.0428, -0.0012, -0.0036),
    (0.0817, 0.0765, 0.0749),
    (-0.1264, -0.0522, -0.1103),
    (-0.0280, -0.0881, -0.0499),
    (-0.1262, -0.0982, -0.0778),
)
PREVIEW_BIAS = (-0.0329, -0.0718, -0.0851)


def spatial_latents(pipe: Any, latents: Any, width: int, height: int) -> Any:
    """Flux's packed (batch, tokens, channels x 2 x 2) latents as (batch, channels, h, w),
    by the pipeline's own unpacking."""
    return pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor)


class Encoder:
    def __init__(self, pipe: Any, clip_skip: int) -> None:
        from engine.prompts import PromptEncoder

        self._clip = PromptEncoder(pipe.tokenizer, pipe.text_encoder, truncate=True)
        # T5 reads up to its tokenizer's length; CLIP gives only its pooled output.
        self._t5 = PromptEncoder(pipe.tokenizer_2, pipe.text_encoder_2, truncate=True)

    def encode(self, prompt: str, negative: str) -> dict[str, Any]:
        return {
            "prompt_embeds": self._t5.encode(prompt),
            "pooled_prompt_embeds": self._clip.pooled(prompt),
        }
