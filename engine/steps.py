"""How many steps a batch asks for, and how many its pipeline will run."""

from __future__ import annotations

from typing import Any

from engine.types import ImageSpec


def steps_to_ask(spec: ImageSpec) -> int:
    """img2img runs int(steps * strength) steps; ask for enough that at least one runs."""
    steps = spec.steps
    if spec.mode != "text2img":
        while int(steps * spec.strength) < 1:
            steps += 1
    return steps


def count_denoising_steps(batch: Any, pipe: Any) -> int:
    """How many times the pipeline's step callback will fire, as the pipeline computes
    it: second-order samplers (Heun, DPM2) step twice per inference step, and img2img
    skips the first (1 - strength) part of the schedule (each family rounds that its
    own way, so the pipeline's own `get_timesteps` says)."""
    # The pipeline calls set_timesteps again itself, which resets the scheduler.
    scheduler = batch.scheduler
    options: dict[str, Any] = {}
    if scheduler.config.get("use_dynamic_shifting"):
        options["mu"] = 1.0  # Flux shifts the schedule by image size; the count stays
    scheduler.set_timesteps(batch.steps, **options)
    if batch.mode == "text2img":
        return len(scheduler.timesteps)
    pipe.scheduler = scheduler
    timesteps, _ = pipe.get_timesteps(batch.steps, batch.specs[0].strength, "cpu")
    return len(timesteps)
