"""Getting results to Discord when it is not easy: 429s and 5xx answers, an expired
interaction token, the upload limit, and pictures the NSFW classifier flagged (this
module's classifier flags every picture, with the spoiler action). Here the bot has
no guild_ids, so its commands are global."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from tiny_model import build_tiny_safety_checker

from .fake_discord import FakeDiscord
from .harness import RunningBot, png_parameters

# PATCH of the deferred response with the pictures (multipart), not status edits.
RESULT_EDIT = r"^/webhooks/\d+/[^/]+/messages/\d+$"


@pytest.fixture(scope="module")
def extra_config(tmp_path_factory: pytest.TempPathFactory) -> str:
    checker: Path = build_tiny_safety_checker(
        tmp_path_factory.mktemp("nsfw") / "checker", flag_everything=True
    )
    return f"""
[safety]
nsfw_classifier = "{checker}"
nsfw_action = "spoiler"
"""


@pytest.fixture(scope="module")
def guild_sync() -> bool:
    return False


async def test_without_guild_ids_commands_are_registered_globally(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    assert fake.guild_id not in fake.commands
    assert "imagine" in {command["name"] for command in fake.commands[None]}


@pytest.mark.parametrize("status", [429, 502])
async def test_result_survives_a_rate_limit_or_a_bad_gateway(
    bot: RunningBot, fake: FakeDiscord, status: int
) -> None:
    fake.fail_next("PATCH", RESULT_EDIT, status, multipart_only=True, retry_after=0.25)
    interaction = await fake.slash("imagine", bot.users.alice, prompt="a red fox", steps=2)
    message = await bot.result(interaction)

    assert [failure[2] for failure in fake.failed if failure[2] == status] == [status]
    assert "Model: tiny" in png_parameters(message.files[0].data)
    fake.failed.clear()


async def test_after_the_token_expired_the_result_goes_to_the_channel(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    # Clicked 14 min 45 s ago: acknowledged in time, but the token dies before delivery.
    interaction = await fake.slash(
        "imagine",
        bot.users.bob,
        prompt="a lighthouse at dusk",
        steps=2,
        created_at=time.time() - 14 * 60 - 45,
    )

    def posted() -> list:
        return [
            m for m in fake.channel_messages(fake.channel) if bot.users.bob.mention in m.content
        ]

    (message,) = await fake.wait_for(posted, what="a channel message for bob")
    assert message.content.startswith(bot.users.bob.mention)
    assert "a lighthouse at dusk" in message.content
    assert png_parameters(message.files[0].data).startswith("a lighthouse at dusk")
    assert "🔁 Re-roll" in message.labels
    assert not interaction.files
    # With a nonce Discord enforces: a repeated send is the same message, not a copy.
    assert message.nonce is not None and message.nonce.startswith("atelier-")


async def test_pictures_too_big_for_the_upload_limit_are_sent_smaller(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    fake.attachment_size_limit = 20_000
    try:
        interaction = await fake.slash("imagine", bot.users.alice, prompt="a cat", count=4)
        message = await fake.wait_files(interaction, 4)
    finally:
        fake.attachment_size_limit = 10 * 1024 * 1024

    assert len(message.files) == 4  # the grid was dropped
    assert all(f.filename.endswith(".webp") for f in message.files)
    assert sum(len(f.data) for f in message.files) <= 20_000


async def test_flagged_pictures_are_spoilers_outside_nsfw_channels(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    here = await fake.slash("imagine", bot.users.alice, prompt="a dog", count=2, steps=2)
    message = await bot.result(here, count=2)
    assert all(f.spoiler for f in message.files), [f.filename for f in message.files]

    there = await fake.slash(
        "imagine", bot.users.alice, prompt="a dog", steps=2, channel=fake.nsfw_channel
    )
    nsfw_message = await bot.result(there)
    assert not any(f.spoiler for f in nsfw_message.files)


async def test_a_slow_upload_never_delays_another_users_job(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    alice = await fake.slash("imagine", bot.users.alice, prompt="a slow upload", steps=2)
    # Alice's result takes 4 s to upload. Bob's job (other steps: its own batch) paints
    # meanwhile, and its result must not queue behind her upload.
    fake.slow.append(("PATCH", re.compile(rf"/webhooks/\d+/{alice.token}/messages/"), 4.0))
    try:
        bob = await fake.slash("imagine", bot.users.bob, prompt="a quick one", steps=3)
        bob_result = await bot.result(bob)
        alice_result = await bot.result(alice)
    finally:
        fake.slow.clear()
    assert bob_result.files_at is not None and alice_result.files_at is not None
    assert bob_result.files_at < alice_result.files_at
