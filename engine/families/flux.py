"""Flux.1 (dev and schnell): CLIP's pooled output and T5's hidden states feeding a
double/single-stream transformer, sampled by flow matching.

Flux is guidance-distilled: it has no negative prompt (one given is ignored, and the
user is told), and `cfg` is dev's distilled guidance, which schnell does not read.
Prompts go through compel (its Flux support): A1111 weights reach T5.
"""

from __future__ import annotations

from typing import Any

from engine.families import FamilyTraits
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
