"""Samplers by their AUTOMATIC1111 names, built as diffusers schedulers.

Two kinds of schedule: DISCRETE, the noise schedules of the UNet families (SD 1.x/2.x,
SDXL), which take A1111's samplers; and FLOW, the flow-matching families (SD 3, Flux),
which take diffusers' flow-match schedulers. A name means one scheduler within a kind.

The bot imports this module to validate names, so torch and diffusers are imported
only inside `build_scheduler`, never at module level.
"""

from __future__ import annotations

from collections.abc import Iterable
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
DISCRETE = "discrete"
FLOW = "flow"

_DISCRETE_RECIPES: dict[str, SamplerRecipe] = {
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

# Flow matching: Euler with the model's own shift; "Euler a" adds fresh noise each step
# (diffusers' stochastic sampling); Karras and beta sigma spacings. Heun works with
# SD 3 only: Flux passes its own sigmas, which FlowMatchHeunDiscreteScheduler refuses.
_FLOW_RECIPES: dict[str, SamplerRecipe] = {
    "Euler": SamplerRecipe("FlowMatchEulerDiscreteScheduler"),
    "Euler a": SamplerRecipe("FlowMatchEulerDiscreteScheduler", {"stochastic_sampling": True}),
    "Euler Karras": SamplerRecipe("FlowMatchEulerDiscreteScheduler", _KARRAS),
    "Euler Beta": SamplerRecipe("FlowMatchEulerDiscreteScheduler", {"use_beta_sigmas": True}),
    "Heun": SamplerRecipe("FlowMatchHeunDiscreteScheduler"),
}
_RECIPES = {DISCRETE: _DISCRETE_RECIPES, FLOW: _FLOW_RECIPES}

SAMPLER_NAMES: list[str] = list(_DISCRETE_RECIPES)
FLOW_SAMPLER_NAMES: list[str] = list(_FLOW_RECIPES)

# Other spellings people paste from A1111 or ComfyUI.
_ALIASES = {"PLMS": "PNDM", "euler_ancestral": "Euler a", "k_euler_a": "Euler a"}


def _key(name: str) -> str:
    return "".join(name.lower().split()).replace("_", "")


_LOOKUP: dict[str, str] = {_key(name): name for name in SAMPLER_NAMES + FLOW_SAMPLER_NAMES}
_LOOKUP.update({_key(alias): name for alias, name in _ALIASES.items()})


def canonical_sampler(name: str, choices: Iterable[str] | None = None) -> str:
    """The A1111 spelling of `name`, matched ignoring case, spaces and underscores.

    `choices` (a family's samplers) limits what is accepted; the error lists them.
    """
    allowed = list(choices) if choices is not None else SAMPLER_NAMES
    found = _LOOKUP.get(_key(name))
    if found is None:
        raise ValueError(f"unknown sampler {name!r}; choose one of: {', '.join(allowed)}")
    if found not in allowed:
        raise ValueError(f"this model cannot use {found!r}; choose one of: {', '.join(allowed)}")
    return found


def build_scheduler(name: str, base_config: Any, schedule: str = DISCRETE) -> Any:
    """A fresh scheduler for sampler `name`, keeping the model's own noise schedule.

    `base_config` is the loaded pipeline's `scheduler.config`; options the sampler
    needs (Karras sigmas, solver type) are set explicitly so they never leak in from
    the model's default scheduler.
    """
    import diffusers

    recipes = _RECIPES[schedule]
    recipe = recipes[canonical_sampler(name, recipes)]
    scheduler_class = getattr(diffusers, recipe.scheduler_class)
    return scheduler_class.from_config(base_config, **recipe.options)
