"""/avatar end to end: presets -> prompt, img2img over the framing template."""

from __future__ import annotations

from PIL import Image

from bot.commands import avatar, model
from bot.commands.base import JobAccepted, Reply

from .harness import Harness

CHOICES = {
    "gender": "woman",
    "hair_color": "red",
    "hair_length": "long",
    "eye_color": "green",
    "beard": "none",
    "style": "anime",
}


async def test_avatar_paints_over_the_template(harness: Harness) -> None:
    outcome = await avatar.run(harness.user(), CHOICES)
    assert isinstance(outcome, JobAccepted), outcome
    request = outcome.job.request
    assert request.kind == "avatar"
    assert request.init_image == "inputs/avatar-template-64x64.png"
    assert request.strength == 0.9
    assert (request.width, request.height) == (64, 64)
    assert "(red hair:1.2)" in request.prompt and "(anime style:1.3)" in request.prompt
    assert "beard, stubble" in request.negative and "photo, realistic" in request.negative
    template = harness.services.config.data_dir / request.init_image
    with Image.open(template) as picture:
        assert picture.size == (64, 64)
    job = await harness.finished(outcome.job.id)
    assert job.status.painted, job.error
    assert (harness.services.config.data_dir / job.images[0].path).is_file()


async def test_template_matches_the_model_size(harness: Harness) -> None:
    admin = harness.admin()
    # Square at the current model's base area; tiny2 is 128x128.
    await model.run(admin, "tiny2")
    try:
        outcome = await avatar.run(harness.user(), {"style": "photo"})
    finally:
        await model.run(admin, "tiny")
    assert isinstance(outcome, JobAccepted), outcome
    assert outcome.job.request.init_image == "inputs/avatar-template-128x128.png"
    assert (outcome.job.request.width, outcome.job.request.height) == (128, 128)


async def test_unknown_choice_is_refused_with_the_allowed_values(harness: Harness) -> None:
    ctx = harness.user()
    outcome = await avatar.run(ctx, {**CHOICES, "eye_color": "purple"})
    assert isinstance(outcome, Reply) and outcome.error
    assert outcome.text.startswith("Unknown eye_color 'purple'. Allowed: brown, blue, green")
    assert await harness.jobs_of(ctx) == []


async def test_admin_preset_with_a_blocked_word_is_filtered(harness: Harness) -> None:
    ctx = harness.user()
    step = harness.services.presets.step("style")
    assert step is not None and "risque" in step.values  # merged from [avatar] presets_file
    outcome = await avatar.run(ctx, {"style": "risque"})
    assert outcome == Reply("That prompt isn't allowed here.", error=True)
    assert await harness.jobs_of(ctx) == []
