"""Requests checked against the model's family before the engine sees them: defaults
from the model, samplers, LoRAs, negative prompts, and the filter on plain text."""

from __future__ import annotations

import pytest

from bot.commands import imagine, loras, model
from bot.commands.base import JobAccepted, Reply

from .harness import Harness


async def test_defaults_come_from_the_model_and_its_family(harness: Harness) -> None:
    xl = harness.services.config.models["xl"]
    assert (xl.family, xl.width, xl.height) == ("sdxl", 64, 64)
    assert (xl.default_steps, xl.default_cfg, xl.sampler) == (30, 6.0, "DPM++ 2M Karras")
    flux = harness.services.config.models["flux"]
    # A schnell-shaped Flux: 4 steps, no guidance; diffusers' native 128 latents x 2.
    assert (flux.family, flux.default_steps, flux.default_cfg) == ("flux", 4, 0.0)
    assert (flux.width, flux.height) == (256, 256)
    outcome = await imagine.run(harness.user(), "a red fox --model xl --steps 2")
    assert isinstance(outcome, JobAccepted), outcome
    request = outcome.job.request
    assert (request.width, request.height, request.sampler) == (64, 64, "DPM++ 2M Karras")
    assert request.model_given
    await harness.drop(outcome)


async def test_a_job_that_named_no_model_says_so(harness: Harness) -> None:
    outcome = await imagine.run(harness.user(), "a red fox --steps 1")
    assert isinstance(outcome, JobAccepted), outcome
    assert not outcome.job.request.model_given
    await harness.drop(outcome)


async def test_a_sampler_the_model_cannot_use_is_refused_with_its_list(harness: Harness) -> None:
    before = await harness.jobs_of(ctx := harness.user())
    outcome = await imagine.run(ctx, "a fox --model flux --sampler DPM++ 2M Karras")
    assert isinstance(outcome, Reply) and outcome.error
    assert "cannot use the sampler 'DPM++ 2M Karras'" in outcome.text
    assert "Available: Euler, Euler a, Euler Karras, Euler Beta." in outcome.text
    assert await harness.jobs_of(ctx) == before


async def test_a_negative_prompt_flux_ignores_comes_with_a_note(harness: Harness) -> None:
    outcome = await imagine.run(harness.user(), "a fox --model flux --steps 1 --no blurry")
    assert isinstance(outcome, JobAccepted), outcome
    assert "Flux.1 models take no negative prompt, so yours is ignored." in outcome.text
    await harness.drop(outcome)


@pytest.mark.parametrize(
    "prompt", ["nu()de", "nu[]de", "(nud:1)(e:1)", "g[]o(r)e", "nu<lora:xldetail>de"]
)
async def test_the_filter_reads_what_the_encoder_reads(harness: Harness, prompt: str) -> None:
    ctx = harness.user()
    outcome = await imagine.run(ctx, f"a statue, {prompt} --model xl")
    assert isinstance(outcome, Reply) and outcome.error, outcome
    assert "isn't allowed" in outcome.text
    assert await harness.jobs_of(ctx) == []


async def test_loras_are_checked_by_name_and_family(harness: Harness) -> None:
    ctx = harness.user()
    unknown = await imagine.run(ctx, "a fox <lora:nothing:0.5> --model xl")
    assert isinstance(unknown, Reply) and "no LoRA named 'nothing'" in unknown.text
    wrong = await imagine.run(ctx, "a fox <lora:fluxstyle> --model xl")
    assert isinstance(wrong, Reply) and wrong.error
    assert "The LoRA 'fluxstyle' is for Flux.1 models; xl is SDXL." in wrong.text
    assert await harness.jobs_of(ctx) == []
    accepted = await imagine.run(ctx, "a fox <lora:xldetail:0.8> --model xl --steps 1")
    assert isinstance(accepted, JobAccepted), accepted
    # The tag stays in the prompt: the PNG records it, as A1111 does.
    assert accepted.job.request.prompt == "a fox <lora:xldetail:0.8>"
    await harness.drop(accepted)


async def test_loras_and_models_are_listed(harness: Harness) -> None:
    listing = await loras.run(harness.user())
    assert isinstance(listing, Reply)
    # The tiny SDXL LoRA's family cannot be told from its names alone; Flux's can.
    assert "▫️ fluxstyle — Flux.1\n▫️ xldetail\n" in listing.text
    models = await model.run(harness.user())
    assert isinstance(models, Reply)
    assert "xl — SDXL, 64x64, 30 steps, DPM++ 2M Karras" in models.text
