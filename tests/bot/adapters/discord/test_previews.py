"""Live previews on Discord: the deferred response is edited with a small JPEG of the
picture so far, within the throttle, and the result's edit replaces it. With previews
off no edit carries a picture before the result."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from itertools import pairwise
from pathlib import Path

import pytest
from PIL import Image

from .fake_discord import FakeDiscord, FakeInteraction, FakeMessage
from .harness import RunningBot, Users, discord_section, png_parameters

STATUS_INTERVAL = 0.2  # per job
PREVIEW_INTERVAL = 0.25  # per channel
PREVIEW_EVERY = 0.05  # the engine's
SLACK = 0.05  # the loop's clock against the fake's reads of it


async def start_bot(
    fake: FakeDiscord,
    tiny_model_dir: Path,
    write_config: Callable[..., Path],
    folder: Path,
    preview_every: float,
) -> RunningBot:
    users = Users(
        alice=fake.add_user("alice"),
        bob=fake.add_user("bob"),
        root=fake.add_user("root"),
        boss=fake.add_user("boss", administrator=True),
    )
    path = write_config(folder, discord_section(fake, tiny_model_dir, users, guild_sync=True))
    text = path.read_text().replace("preview_every = 0\n", f"preview_every = {preview_every}\n", 1)
    path.write_text(text)
    bot = RunningBot(
        fake,
        path,
        users,
        adapter_options={"status_interval": STATUS_INTERVAL, "preview_interval": PREVIEW_INTERVAL},
    )
    await bot.start()
    return bot


@pytest.fixture(scope="module")
async def previewing(
    tiny_model_dir: Path,
    write_config: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningBot]:
    fake = FakeDiscord()
    async with fake.running():
        folder = tmp_path_factory.mktemp("dc-on")
        bot = await start_bot(fake, tiny_model_dir, write_config, folder, PREVIEW_EVERY)
        yield bot
        await bot.stop()


@pytest.fixture(scope="module")
async def not_previewing(
    tiny_model_dir: Path,
    write_config: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningBot]:
    fake = FakeDiscord()
    async with fake.running():
        folder = tmp_path_factory.mktemp("dc-off")
        bot = await start_bot(fake, tiny_model_dir, write_config, folder, 0)
        yield bot
        await bot.stop()


async def painted(bot: RunningBot, steps: int) -> tuple[FakeInteraction, FakeMessage]:
    interaction = await bot.fake.slash(
        "imagine", bot.users.alice, prompt="a lighthouse at dusk", steps=steps
    )
    # Generous: a loaded CI runner may take a while to start the engine.
    message = await bot.fake.wait_files(interaction, 1, timeout=120)
    return interaction, message


def preview_uploads(message: FakeMessage) -> list[tuple[float, bytes]]:
    return [
        (at, upload.data)
        for at, uploads in message.uploads
        for upload in uploads
        if upload.filename == "preview.jpg"
    ]


async def test_previews_arrive_while_it_paints_and_the_result_replaces_them(
    previewing: RunningBot,
) -> None:
    interaction, message = await painted(previewing, steps=20)
    assert message is interaction.original

    previews = preview_uploads(message)
    assert len(previews) >= 2
    for _, data in previews:
        with Image.open(io.BytesIO(data)) as picture:
            assert picture.format == "JPEG" and picture.size == (64, 64)
    # Each preview edit carried the painting status, and only the preview.
    for at, uploads in message.uploads:
        if any(upload.filename == "preview.jpg" for upload in uploads):
            content = next(text for when, text, _ in message.history if when == at)
            assert content.startswith("🎨 Painting…") and len(uploads) == 1

    # Within the throttle: pictures per channel at most every PREVIEW_INTERVAL, and
    # every status edit of the job at most every STATUS_INTERVAL (the result excepted).
    assert all(b - a >= PREVIEW_INTERVAL - SLACK for (a, _), (b, _) in pairwise(previews))
    status_edits = [at for at, content, _ in message.history[:-1] if content]
    assert all(b - a >= STATUS_INTERVAL - SLACK for a, b in pairwise(status_edits))

    # The result's edit replaced the preview: the PNG alone, with its parameters.
    assert [f.filename.endswith(".png") for f in message.files] == [True]
    assert "Model: tiny" in png_parameters(message.files[0].data)
    assert "a lighthouse at dusk" in message.content


async def test_a_cancelled_job_leaves_no_preview_behind(previewing: RunningBot) -> None:
    fake = previewing.fake
    interaction = await fake.slash(
        "imagine", previewing.users.bob, prompt="a slow painting", steps=50
    )
    await fake.wait_for(
        lambda: interaction.original is not None and preview_uploads(interaction.original),
        timeout=120,
        what="a preview",
    )
    await fake.slash("cancel", previewing.users.bob)
    message = interaction.original
    assert message is not None
    await fake.wait_for(lambda: "Cancelled" in message.content, what="the cancel notice")
    assert message.files == []


# Last: its fake Discord takes over discord.py's (global) base URLs for the module's rest.
async def test_with_previews_off_no_edit_carries_a_picture_before_the_result(
    not_previewing: RunningBot,
) -> None:
    _, message = await painted(not_previewing, steps=20)
    assert preview_uploads(message) == []
    *status, (_, last) = message.uploads
    assert all(uploads == [] for _, uploads in status)
    assert [upload.filename.endswith(".png") for upload in last] == [True]
