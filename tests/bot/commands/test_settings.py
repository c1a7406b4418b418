"""/settings: a user's defaults change their next jobs, and only where they said nothing."""

from __future__ import annotations

from bot.commands import avatar, imagine, settings
from bot.commands.base import JobAccepted, Reply
from bot.commands.generation import DM_RESULTS
from bot.records import UserSettings

from .harness import Harness


async def test_typed_settings_change_the_next_job_where_it_says_nothing(harness: Harness) -> None:
    ctx = harness.user()
    panel = await settings.run(ctx, "--ar 16:9 --steps 2 --sampler euler --no blurry, text")
    assert isinstance(panel, Reply) and not panel.error, panel
    assert panel.private
    assert "16:9" in panel.text and "blurry, text" in panel.text

    outcome = await imagine.run(ctx, "a wide valley --model tiny2")
    assert isinstance(outcome, JobAccepted), outcome
    request = outcome.job.request
    assert (request.width, request.height) == (192, 128)  # 16:9 at tiny2's 128x128 area
    assert (request.steps, request.sampler, request.negative) == (2, "Euler", "blurry, text")
    await harness.drop(outcome)

    # What a command names wins; a negative it names gets the default one added.
    outcome = await imagine.run(
        ctx, "a valley --model tiny2 --size 128x64 --steps 3 --sampler DDIM --no fog"
    )
    assert isinstance(outcome, JobAccepted), outcome
    request = outcome.job.request
    assert (request.width, request.height, request.steps) == (128, 64, 3)
    assert (request.sampler, request.negative) == ("DDIM", "fog, blurry, text")
    await harness.drop(outcome)

    # Another user is not affected.
    outcome = await imagine.run(harness.user(), "a valley --model tiny2")
    assert isinstance(outcome, JobAccepted), outcome
    request = outcome.job.request
    assert (request.width, request.height, request.steps, request.negative) == (128, 128, 3, "")
    await harness.drop(outcome)


async def test_a_painted_job_follows_the_settings(harness: Harness) -> None:
    ctx = harness.user()
    await settings.run(ctx, "--steps 1 --ar 1:4")
    outcome = await imagine.run(ctx, "a tall tower")
    assert isinstance(outcome, JobAccepted), outcome
    job = await harness.finished(outcome.job.id)
    assert job.status.painted, job.error
    assert "Steps: 1," in job.images[0].parameters
    assert (job.request.width, job.request.height) == (64, 128)


async def test_a_setting_the_model_cannot_use_gives_way_with_a_note(harness: Harness) -> None:
    ctx = harness.user()
    assert not (await settings.run(ctx, "--steps 5 --sampler DDIM")).error
    outcome = await imagine.run(ctx, "a fox --model flux")
    assert isinstance(outcome, JobAccepted), outcome
    request = outcome.job.request
    flux = harness.services.config.models["flux"]
    assert request.sampler == flux.sampler and request.steps == 5
    assert "cannot use your sampler DDIM" in outcome.text
    await harness.drop(outcome)


async def test_the_avatar_keeps_its_square_but_takes_steps_and_negative(harness: Harness) -> None:
    ctx = harness.user()
    await settings.run(ctx, "--ar 16:9 --steps 2 --no watermark")
    outcome = await avatar.run(ctx, {})
    assert isinstance(outcome, JobAccepted), outcome
    request = outcome.job.request
    assert request.width == request.height
    assert request.steps == 2 and request.negative.endswith("watermark")
    await harness.drop(outcome)


async def test_panel_presses_set_and_reset(harness: Harness) -> None:
    ctx = harness.user()
    panel = await settings.run(ctx)
    assert isinstance(panel, Reply)
    titles = [menu.title for menu in panel.menus]
    assert titles == ["📐 Aspect", "🔢 Steps", "🎲 Sampler"]
    aspect = panel.menus[0]
    assert aspect.options[aspect.chosen or 0].label == settings.MODEL_DEFAULT
    wide = next(option for option in aspect.options if option.label == "16:9")
    panel = await settings.click(ctx, wide.data)
    assert panel.menus[0].options[panel.menus[0].chosen or 0].label == "16:9"
    dm = next(button for row in panel.buttons for button in row if "DMs" in button.label)
    assert dm.label.endswith("off")
    panel = await settings.click(ctx, dm.data)
    panel = await settings.click(ctx, dm.data)  # the same press twice: still on
    assert await settings.user_settings(ctx) == UserSettings(aspect="16:9", dm_results=True)

    # Telegram opens a menu in place of the keyboard.
    opened = await settings.click(ctx, panel.menus[1].open)
    assert [menu.expanded for menu in opened.menus] == [False, True, False]

    outcome = await imagine.run(ctx, "a fox --steps 1")
    assert isinstance(outcome, JobAccepted), outcome
    assert outcome.job.origin.get(DM_RESULTS) is True
    await harness.drop(outcome)

    reset = next(button for row in panel.buttons for button in row if "Reset" in button.label)
    panel = await settings.click(ctx, reset.data)
    assert await settings.user_settings(ctx) == UserSettings()
    outcome = await imagine.run(ctx, "a fox --steps 1")
    assert isinstance(outcome, JobAccepted), outcome
    assert DM_RESULTS not in outcome.job.origin
    await harness.drop(outcome)


async def test_bad_settings_are_refused_and_change_nothing(harness: Harness) -> None:
    ctx = harness.user()
    await settings.run(ctx, "--steps 3")
    for text, words in [
        ("--steps 500", "steps must be between 1 and 10"),
        ("--size 768x512", "aspect ratio like 3:2"),
        ("--ar 9:1", "between 1:4 and 4:1"),
        ("--sampler Nonsense", "Unknown sampler"),
        ("--seed 4", "/settings keeps"),
        ("a red fox", "/settings shows"),
    ]:
        reply = await settings.run(ctx, text)
        assert isinstance(reply, Reply) and reply.error, text
        assert words in reply.text, (text, reply.text)
    assert await settings.user_settings(ctx) == UserSettings(steps=3)
    stale = await settings.click(ctx, "set:steps:9999")
    assert stale.error and "out of date" in stale.text
    assert (await settings.click(ctx, "set:nothing")).error
    assert await settings.user_settings(ctx) == UserSettings(steps=3)
