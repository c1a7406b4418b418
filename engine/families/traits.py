"""What a model family can do, and the defaults it starts from (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FamilyTraits:
    name: str  # as configs write it: "sd", "sdxl", "sd3", "flux"
    label: str  # as people say it
    pipeline_class: str  # the diffusers text2img pipeline
    # The denoiser's folder in a diffusers layout, and its latent size when its config
    # has none (Flux: the pipeline's default_sample_size).
    denoiser: str
    default_sample_size: int
    schedule: str  # DISCRETE (A1111's samplers) or FLOW (flow matching)
    samplers: tuple[str, ...]
    default_sampler: str
    default_steps: int
    default_cfg: float
    uses_negative: bool  # False: a negative prompt is ignored, with a note to the user
    weighting: bool  # A1111 (a:1.2) weights reach the encoder; else reduced to plain text
    clip_skip: tuple[int, ...] = (1,)  # values `clip_skip` may take
    # Pixels per side must be a multiple of the VAE factor times this (Flux packs 2x2).
    latent_multiple: int = 1

    def takes_sampler(self, name: str) -> bool:
        return name in self.samplers
