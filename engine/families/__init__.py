"""Model families: what each one can do, and the defaults it starts from.

Everything a family does differently lives in its own module (`sd`, `sdxl`, `sd3`,
`flux`): its traits here, and how it encodes prompts. This package and the traits are
torch-free, so the bot process can check a request against a model's family (its
samplers, whether it takes a negative prompt) without loading the model. The prompt
encoders import torch inside their functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.samplers import DISCRETE, FLOW


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


def _families() -> dict[str, FamilyTraits]:
    from engine.families import flux, sd, sd3, sdxl

    return {module.TRAITS.name: module.TRAITS for module in (sd, sdxl, sd3, flux)}


FAMILIES: dict[str, FamilyTraits] = _families()
FAMILY_NAMES = tuple(FAMILIES)
# Which family a diffusers pipeline class (model_index.json's `_class_name`) belongs to.
_BY_PIPELINE = {
    "StableDiffusionPipeline": "sd",
    "StableDiffusionImg2ImgPipeline": "sd",
    "StableDiffusionInpaintPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl",
    "StableDiffusionXLImg2ImgPipeline": "sdxl",
    "StableDiffusionXLInpaintPipeline": "sdxl",
    "StableDiffusion3Pipeline": "sd3",
    "StableDiffusion3Img2ImgPipeline": "sd3",
    "StableDiffusion3InpaintPipeline": "sd3",
    "FluxPipeline": "flux",
    "FluxImg2ImgPipeline": "flux",
    "FluxInpaintPipeline": "flux",
}


def family(name: str) -> FamilyTraits:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(
            f"unknown model family {name!r}; use one of: {', '.join(FAMILY_NAMES)}"
        ) from None


def family_of_pipeline(class_name: str) -> str | None:
    return _BY_PIPELINE.get(class_name)


__all__ = ["DISCRETE", "FAMILIES", "FAMILY_NAMES", "FLOW", "FamilyTraits", "family"]
