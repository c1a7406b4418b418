"""Model families: what each one can do, and the defaults it starts from.

Everything a family does differently lives in its own module (`sd`, `sdxl`, `sd3`,
`flux`): its traits (`FamilyTraits`, in `traits`), and how it encodes prompts. This
package and the traits are torch-free, so the bot process can check a request against
a model's family (its samplers, whether it takes a negative prompt) without loading
the model. The prompt encoders import torch inside their functions.
"""

from __future__ import annotations

from engine.families import flux, sd, sd3, sdxl
from engine.families.traits import FamilyTraits
from engine.samplers import DISCRETE, FLOW

FAMILIES: dict[str, FamilyTraits] = {
    module.TRAITS.name: module.TRAITS for module in (sd, sdxl, sd3, flux)
}
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
