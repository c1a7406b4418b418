"""Samplers by their AUTOMATIC1111 names, built as diffusers schedulers.

The bot imports this module to validate names, so torch and diffusers are imported
only inside `build_scheduler`, never at module level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SamplerRecipe:
    """Which diffusers scheduler class an A1111 sampler is, and the options it needs."""

    scheduler_class: str
    options: dict[str, Any] = field(default_factory=dict)


_KARRAS = {"use_karras_sigmas": True}
_NO_KARRAS = {"use_karras_sigmas": False}

# "DPM++ SDE" / "DPM++ SDE Karras" are left out: diffusers' DPMSolverSDEScheduler needs
# the extra `torchsde` package. "DPM++ 2M SDE" covers the same ground without it.
_RECIPES: dict[str, SamplerRecipe] = {
    "Euler a": SamplerRecipe("EulerAncestralDiscreteScheduler"),
    "Euler": SamplerRecipe("EulerDiscreteScheduler", _NO_KARRAS),
    "LMS": SamplerRecipe("LMSDiscreteScheduler", _NO_KARRAS),
    "LMS Karras": SamplerRecipe("LMSDiscreteScheduler", _KARRAS),
    "Heun": SamplerRecipe("HeunDiscreteScheduler", _NO_KARRAS),
    "DPM2": SamplerRecipe("KDPM2DiscreteScheduler", _NO_KARRAS),
    "DPM2 Karras": SamplerRecipe("KDPM2DiscreteScheduler", _KARRAS),
    "DPM2 a": SamplerRecipe("KDPM2AncestralDiscreteScheduler", _NO_KARRAS),
    "DPM2 a Karras": SamplerRecipe("KDPM2AncestralDiscreteScheduler", _KARRAS),
    "DPM++ 2M": SamplerRecipe(
        "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", **_NO_KARRAS}
    ),
    "DPM++ 2M Karras": SamplerRecipe(
        "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", **_KARRAS}
    ),
    "DPM++ 2M SDE": SamplerRecipe(
        "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", **_NO_KARRAS}
    ),
    "DPM++ 2M SDE Karras": SamplerRecipe(
        "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", **_KARRAS}
    ),
    "DDIM": SamplerRecipe("DDIMScheduler"),
    "PNDM": SamplerRecipe("PNDMScheduler", {"skip_prk_steps": True}),
    "UniPC": SamplerRecipe("UniPCMultistepScheduler", _NO_KARRAS),
    "DEIS": SamplerRecipe("DEISMultistepScheduler", _NO_KARRAS),
    "DDPM": SamplerRecipe("DDPMScheduler"),
}

SAMPLER_NAMES: list[str] = list(_RECIPES)

# Other spellings people paste from A1111 or ComfyUI.
_ALIASES = {"PLMS": "PNDM", "euler_ancestral": "Euler a", "k_euler_a": "Euler a"}


def _key(name: str) -> str:
    return "".join(name.lower().split()).replace("_", "")


_LOOKUP: dict[str, str] = {_key(name): name for name in SAMPLER_NAMES}
_LOOKUP.update({_key(alias): name for alias, name in _ALIASES.items()})


def canonical_sampler(name: str) -> str:
    """The A1111 spelling of `name`, matched ignoring case, spaces and underscores."""
    found = _LOOKUP.get(_key(name))
    if found is None:
        raise ValueError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLER_NAMES)}")
    return found


def build_scheduler(name: str, base_config: Any) -> Any:
    """A fresh scheduler for sampler `name`, keeping the model's own noise schedule.

    `base_config` is the loaded pipeline's `scheduler.config`; options the sampler
    needs (Karras sigmas, solver type) are set explicitly so they never leak in from
    the model's default scheduler.
    """
    import diffusers

    recipe = _RECIPES[canonical_sampler(name)]
    scheduler_class = getattr(diffusers, recipe.scheduler_class)
    return scheduler_class.from_config(base_config, **recipe.options)
