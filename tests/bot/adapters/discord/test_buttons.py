"""Result buttons end to end: clicks make new pictures (in new messages), Delete
obeys ownership, and the buttons keep working after Atelier restarts."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest
from PIL import Image

from .fake_discord import FakeDiscord, FakeMessage, FakeUser
from .harness import RunningBot, png_parameters


async def picture(bot: RunningBot, user: FakeUser, **options: object) -> FakeMessage:
    interaction = await bot.fake.slash("imagine", user, prompt="a fox", steps=2, **options)
    count = options.get("count", 1)
    assert isinstance(count, int)
    return await bot.result(interaction, count)


def button(message: FakeMessage, label: str) -> str:
    return message.custom_ids[message.labels.index(label)]


def seed_of(png: bytes) -> str:
    return png_parameters(png).split("Seed: ")[1].split(",")[0]


async def test_reroll_posts_a_new_picture_and_keeps_the_old(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    first = await picture(bot, bot.users.alice, seed=11)
    click = await fake.click(first, button(first, "🔁 Re-roll"), bot.users.alice)
    result = await bot.result(click)

    # A public "thinking" response, which the new picture then replaces in place: an
    # edit, so delivering it again could never make a second message.
    assert click.first_callback == {"type": 5}
    assert result is click.original and not result.ephemeral
    assert click.followups == []
    assert seed_of(result.files[0].data) != "11"
    assert png_parameters(result.files[0].data).startswith("a fox")
    assert result.labels == first.labels
    assert not first.deleted and len(first.files) == 1


async def test_vary_and_upscale_buttons_of_a_grid(bot: RunningBot, fake: FakeDiscord) -> None:
    grid = await picture(bot, bot.users.bob, count=2)
    second_seed = seed_of(grid.files[2].data)

    varied = await bot.result(await fake.click(grid, button(grid, "V2"), bot.users.bob))
    assert "Strength: 0.6" in varied.content

    upscaled = await bot.result(await fake.click(grid, button(grid, "U2"), bot.users.bob))
    assert Image.open(io.BytesIO(upscaled.files[0].data)).size == (128, 128)
    assert seed_of(upscaled.files[0].data) == second_seed


async def test_delete_is_for_the_owner_or_an_admin(bot: RunningBot, fake: FakeDiscord) -> None:
    mine = await picture(bot, bot.users.alice)
    refused = await fake.click(mine, button(mine, "🗑 Delete"), bot.users.bob)
    reply = await fake.wait_reply(refused)
    assert reply.ephemeral and "Only the person who asked" in reply.content
    assert not mine.deleted

    by_owner = await fake.click(mine, button(mine, "🗑 Delete"), bot.users.alice)
    await fake.wait_for(lambda: mine.deleted and not by_owner.messages, what="deletion")

    theirs = await picture(bot, bot.users.bob)
    by_admin = await fake.click(theirs, button(theirs, "🗑 Delete"), bot.users.root)
    await fake.wait_for(lambda: theirs.deleted and not by_admin.messages, what="deletion")


async def test_buttons_and_waiting_jobs_survive_a_restart(
    bot: RunningBot, fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    assert bot.services is not None
    caplog.set_level(logging.DEBUG)
    before = await picture(bot, bot.users.alice, seed=5)
    # Atelier stops serving before the next jobs can run: they wait in the store.
    await bot.services.scheduler.stop()
    waiting = await fake.slash("imagine", bot.users.bob, prompt="a blue hat", steps=2)
    status = await fake.wait_reply(waiting)
    assert status.content.startswith("⏳") and not status.files
    unwanted = await fake.slash("imagine", bot.users.alice, prompt="a red hat", steps=2)
    unwanted_status = await fake.wait_reply(unwanted)
    cancelled = await fake.wait_reply(await fake.slash("cancel", bot.users.alice))
    assert cancelled.ephemeral and cancelled.content.startswith("🛑 Cancelled job")
    await fake.wait_for(lambda: unwanted_status.content.startswith("🛑"), what="cancel note")

    restarted_at = asyncio.get_running_loop().time()
    await bot.restart()

    # The waiting job runs and its picture replaces the status it had before.
    delivered = await bot.result(waiting)
    assert delivered is status
    assert delivered.files_at is not None and delivered.files_at > restarted_at
    assert png_parameters(delivered.files[0].data).startswith("a blue hat")
    # A button from before the restart still works.
    click = await fake.click(before, button(before, "🔁 Re-roll"), bot.users.alice)
    after = await bot.result(click)
    assert png_parameters(after.files[0].data).startswith("a fox")
    assert seed_of(after.files[0].data) != "5"
    assert not unwanted.files
    assert fake.token not in caplog.text
