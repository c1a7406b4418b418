"""/imagine end to end: inline options, typed options, refusals, variants, the filter."""

from __future__ import annotations

import pytest
from PIL import Image

from bot.commands import imagine
from bot.commands.base import JobAccepted, Reply
from bot.commands.imagine import ImagineOptions

from .harness import Harness


async def test_prompt_with_inline_options_paints_a_png(harness: Harness) -> None:
    ctx = harness.user()
    outcome = await imagine.run(
        ctx,
        'a red fox --seed 7 --steps 3 --sampler "Euler" --cfg 5.5 --size 128x64 --no blurry --n 2',
    )
    assert isinstance(outcome, JobAccepted), outcome
    assert outcome.text.startswith(("⏳ Queued", "🎨"))
    request = outcome.job.request
    assert (request.prompt, request.negative) == ("a red fox", "blurry")
    assert (request.seed, request.steps, request.cfg, request.count) == (7, 3, 5.5, 2)
    assert (request.sampler, request.width, request.height) == ("Euler", 128, 64)
    job = await harness.finished(outcome.job.id)
    assert job.status.painted, job.error
    assert [image.seed for image in job.images] == [7, 8]
    path = harness.services.config.data_dir / job.images[0].path
    with Image.open(path) as picture:
        assert picture.size == (128, 64)
        parameters = picture.text["parameters"]
    assert parameters.startswith("a red fox\nNegative prompt: blurry\n")
    assert "Steps: 3, Sampler: Euler, CFG scale: 5.5, Seed: 7, Size: 128x64" in parameters


async def test_defaults_come_from_the_model(harness: Harness) -> None:
    outcome = await imagine.run(harness.user(), "a blue hat --model tiny2")
    assert isinstance(outcome, JobAccepted), outcome
    request = outcome.job.request
    assert (request.model, request.steps, request.width, request.height) == ("tiny2", 3, 128, 128)
    assert (request.cfg, request.sampler, request.count) == (7.0, "Euler a", 1)
    await harness.drop(outcome)


async def test_aspect_ratio_keeps_the_models_area(harness: Harness) -> None:
    # 16:9 at tiny2's 128x128 base area, in multiples of 64.
    outcome = await imagine.run(harness.user(), "a wide view --ar 16:9 --model tiny2 --steps 1")
    assert isinstance(outcome, JobAccepted), outcome
    assert (outcome.job.request.width, outcome.job.request.height) == (192, 128)
    await harness.drop(outcome)


async def test_typed_options_win_over_inline_ones(harness: Harness) -> None:
    options = ImagineOptions(seed=11, steps=1, size="64x128", negative="text")
    outcome = await imagine.run(harness.user(), "a cat --seed 5 --steps 4 --no dogs", options)
    assert isinstance(outcome, JobAccepted), outcome
    request = outcome.job.request
    assert (request.seed, request.steps, request.negative) == (11, 1, "text")
    assert (request.width, request.height) == (64, 128)
    await harness.drop(outcome)


async def test_em_dash_options_from_phones(harness: Harness) -> None:
    outcome = await imagine.run(harness.user(), "a dog —seed 42 —steps 1")
    assert isinstance(outcome, JobAccepted), outcome
    assert (outcome.job.request.prompt, outcome.job.request.seed) == ("a dog", 42)
    await harness.drop(outcome)


async def test_unquoted_multiword_sampler(harness: Harness) -> None:
    outcome = await imagine.run(harness.user(), "a fox --sampler dpm++ 2m karras at dusk --steps 1")
    assert isinstance(outcome, JobAccepted), outcome
    assert outcome.job.request.sampler == "DPM++ 2M Karras"
    assert outcome.job.request.prompt == "a fox at dusk"
    await harness.drop(outcome)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a fox --steps 80", "Steps must be between 1 and 10 (got 80)."),
        ("a fox --steps 0", "Steps must be between 1 and 10 (got 0)."),
        ("a fox --cfg 45", "Cfg must be between 0 and 30 (got 45)."),
        ("a fox --seed -1", "Seed must be between 0 and 4294967295 (got -1)."),
        ("a fox --n 5", "Count must be between 1 and 4 (got 5)."),
        ("a fox --size 512x64", "Width must be between 64 and 256 (got 512)."),
        ("a fox --ar 9:1", "Aspect ratio must be between 1:4 and 4:1."),
        ("a fox --size big", "Size must look like 768x512 or an aspect ratio like 3:2"),
        ("a fox --cfg nan", "Cfg must be a number between 0 and 30."),
        ("a fox --steps many", "--steps must be a whole number (got 'many')."),
        ("a fox --model sdxl", "Unknown model 'sdxl'. Available: tiny, tiny2, xl, flux."),
        ("a fox --sampler Bogus", "Unknown sampler 'Bogus'. Available: Euler a, Euler,"),
        ("a fox --style raw", "Unknown option --style. Options: --ar, --size, --seed,"),
        ("a fox --seed", "--seed needs a value, like --seed 1234."),
        ("a fox --ar 3:2 --size 64x64", "Use either --ar or --size, not both."),
        ("a fox --strength 0.5", "--strength only works with /vary"),
        ("   ", "Write what to paint after the command"),
        ("--seed 4", "Write what to paint after the command"),
        ("x" * 301, "Your prompt is 301 characters; the limit is 300."),
        ("a {red|blue fox", "The {a|b} variants in your prompt don't add up"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_queued(
    harness: Harness, text: str, message: str
) -> None:
    ctx = harness.user()
    outcome = await imagine.run(ctx, text)
    assert isinstance(outcome, Reply) and outcome.error
    assert outcome.text.startswith(message), outcome.text
    assert await harness.jobs_of(ctx) == []


async def test_bad_typed_option_is_refused(harness: Harness) -> None:
    ctx = harness.user()
    outcome = await imagine.run(ctx, "a fox", ImagineOptions(count=9))
    assert outcome == Reply("Count must be between 1 and 4 (got 9).", error=True)
    assert await harness.jobs_of(ctx) == []


async def test_variants_are_expanded_by_the_seed(harness: Harness) -> None:
    prompts = set()
    for _ in range(2):
        outcome = await imagine.run(
            harness.user(), "a {red|blue|green|pink} fox --seed 99 --steps 1"
        )
        assert isinstance(outcome, JobAccepted), outcome
        prompts.add(outcome.job.request.prompt)
        await harness.drop(outcome)
    assert len(prompts) == 1
    assert prompts.pop() in {"a red fox", "a blue fox", "a green fox", "a pink fox"}
    others = set()
    for seed in range(12):
        outcome = await imagine.run(
            harness.user(), f"a {{red|blue|green|pink}} fox --seed {seed} --steps 1"
        )
        assert isinstance(outcome, JobAccepted), outcome
        others.add(outcome.job.request.prompt)
        await harness.drop(outcome)
    assert len(others) > 1


@pytest.mark.parametrize(
    "text", ["a n.u.d.e statue", "a {nude|nüde} statue", "GORE everywhere", "a nud3 --seed 3"]
)
async def test_filtered_prompts_are_refused_and_audited(harness: Harness, text: str) -> None:
    ctx = harness.user()
    outcome = await imagine.run(ctx, text)
    assert outcome == Reply("That prompt isn't allowed here.", error=True)
    assert await harness.jobs_of(ctx) == []
    audit = await harness.services.store.recent_audit(5)
    assert any(e.actor == ctx.caller.key and e.action == "prompt_refused" for e in audit)


async def test_negative_prompt_is_not_filtered(harness: Harness) -> None:
    outcome = await imagine.run(harness.user(), "a marble statue --no nude, gore --steps 1")
    assert isinstance(outcome, JobAccepted), outcome
    assert outcome.job.request.negative == "nude, gore"
    await harness.drop(outcome)
