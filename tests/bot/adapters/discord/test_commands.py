"""Slash commands end to end: fake Discord -> discord.py -> Atelier -> tiny engine ->
attachments and buttons back on the fake Discord."""

from __future__ import annotations

import dataclasses
import io

import pytest
from PIL import Image

from bot.adapters.discord import DiscordAdapter
from bot.commands import vary
from bot.config import ConfigError

from .fake_discord import EPHEMERAL, LOADING, FakeDiscord
from .harness import RunningBot, png_bytes, png_parameters

ACK_DEADLINE_S = 3.0


async def test_start_registers_commands_in_the_guild_with_no_privileged_intent(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    names = {command["name"] for command in fake.commands[fake.guild_id]}
    assert {"imagine", "vary", "avatar", "queue", "cancel", "help", "model"} <= names
    assert fake.identify is not None
    assert fake.identify["intents"] == 1  # GUILDS only
    avatar = next(c for c in fake.commands[fake.guild_id] if c["name"] == "avatar")
    steps = bot.services.presets.steps
    assert [option["name"] for option in avatar["options"]] == [step.key for step in steps]
    for option, step in zip(avatar["options"], steps, strict=True):
        assert [choice["value"] for choice in option["choices"]] == step.values
        assert len(option["choices"]) <= 25


async def test_imagine_answers_within_3_s_then_delivers_the_png(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    interaction = await fake.slash(
        "imagine", bot.users.alice, prompt="a red fox at dusk", steps=2, seed=7
    )
    message = await bot.result(interaction)

    acked_at, first_callback = interaction.callbacks[0]
    assert first_callback["type"] == 5  # deferred: "Atelier is thinking…"
    assert acked_at - interaction.dispatched_at < ACK_DEADLINE_S
    assert message.files_at is not None and acked_at < message.files_at
    assert message is interaction.original and not message.flags & (EPHEMERAL | LOADING)

    (file,) = message.files
    assert file.filename.endswith(".png")
    parameters = png_parameters(file.data)
    assert parameters.startswith("a red fox at dusk")
    assert "Seed: 7" in parameters and "Model: tiny" in parameters
    assert "Seed: 7" in message.content and "Model: tiny" in message.content
    assert message.labels == [
        "🔁 Re-roll",
        "🎨 Vary",
        "⬆️ Upscale",
        "🖌 Region",
        "🔀 Remix",
        "🔍 Zoom out",
        "⬅️ Left",
        "➡️ Right",
        "🔼 Up",
        "🔽 Down",
        "🗑 Delete",
    ]


async def test_imagine_shows_status_before_the_result(bot: RunningBot, fake: FakeDiscord) -> None:
    interaction = await fake.slash("imagine", bot.users.bob, prompt="a blue hat", steps=2)
    message = await bot.result(interaction)

    contents = [content for _, content, files in message.history if not files]
    assert contents and contents[0].startswith(("⏳", "🎨")), message.history


async def test_count_4_gives_a_grid_and_four_pictures(bot: RunningBot, fake: FakeDiscord) -> None:
    interaction = await fake.slash("imagine", bot.users.alice, prompt="a cat", count=4, steps=2)
    message = await bot.result(interaction, count=4)

    grid, *singles = message.files
    assert grid.filename == "atelier-grid.png"
    assert Image.open(io.BytesIO(grid.data)).size == (128, 128)
    assert len(singles) == 4
    seeds = {png_parameters(f.data).split("Seed: ")[1].split(",")[0] for f in singles}
    assert len(seeds) == 4
    assert all(Image.open(io.BytesIO(f.data)).size == (64, 64) for f in singles)
    assert message.labels == [
        "🔁 Re-roll",
        "🔀 Remix",
        *(f"V{i}" for i in range(1, 5)),
        *(f"U{i}" for i in range(1, 5)),
        "🗑 Delete",
    ]


async def test_imagine_typed_options_reach_the_picture(bot: RunningBot, fake: FakeDiscord) -> None:
    # tiny2 paints at 128x128 by default, so a 16:9 aspect makes a wide picture.
    interaction = await fake.slash(
        "imagine",
        bot.users.alice,
        prompt="a dog",
        negative="blurry",
        aspect="16:9",
        sampler="DDIM",
        cfg=5.5,
        steps=3,
        model="tiny2",
    )
    message = await bot.result(interaction)

    parameters = png_parameters(message.files[0].data)
    assert "Negative prompt: blurry" in parameters
    for expected in ("Steps: 3", "Sampler: DDIM", "CFG scale: 5.5", "Size: 192x128"):
        assert expected in parameters
    assert "Model: tiny2" in parameters
    assert bot.services.scheduler.current_model == "tiny"


async def test_vary_paints_over_the_attached_picture(bot: RunningBot, fake: FakeDiscord) -> None:
    upload = fake.upload(png_bytes(96, 64), "holiday.png", "image/png")
    interaction = await fake.slash(
        "vary", bot.users.alice, image=upload, prompt="a red hat", strength=0.5
    )
    message = await bot.result(interaction)

    parameters = png_parameters(message.files[0].data)
    assert parameters.startswith("a red hat") and "Model: tiny" in parameters
    assert "Strength: 0.5" in message.content


async def test_avatar_from_chosen_presets(bot: RunningBot, fake: FakeDiscord) -> None:
    steps = bot.services.presets.steps
    chosen = {step.key: step.options[-1].value for step in steps[:2]}
    interaction = await fake.slash("avatar", bot.users.bob, **chosen)
    message = await bot.result(interaction)

    prompt, _ = bot.services.presets.build(chosen)
    parameters = png_parameters(message.files[0].data)
    assert parameters.startswith(prompt) and "Model: tiny" in parameters


async def test_help_and_queue_answer_privately(bot: RunningBot, fake: FakeDiscord) -> None:
    help_reply = await fake.wait_reply(await fake.slash("help", bot.users.alice))
    assert help_reply.ephemeral and "/imagine" in help_reply.content

    queue_reply = await fake.wait_reply(await fake.slash("queue", bot.users.alice))
    assert queue_reply.ephemeral and "queue" in queue_reply.content


async def test_cancel_with_nothing_queued_is_refused_privately(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    reply = await bot.private_reply(await fake.slash("cancel", bot.users.bob))
    assert "no pictures in the queue" in reply.content


async def test_autocomplete_suggests_samplers_and_models(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    samplers = await fake.autocomplete(
        "imagine", bot.users.alice, "sampler", prompt="x", sampler="eul"
    )
    assert {c["value"] for c in samplers} == {"Euler", "Euler a"}

    models = await fake.autocomplete("model", bot.users.alice, "name", name="")
    assert [c["value"] for c in models] == ["tiny", "tiny2"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"model": "nope"}, "Unknown model 'nope'"),
        ({"steps": 500}, "steps must be between 1 and 50"),
        ({"size": "10x10"}, "width must be between 64"),
        ({"aspect": "3:2", "size": "64x64"}, "either an aspect or a size"),
        ({"sampler": "Warp Drive"}, "Unknown sampler"),
    ],
)
async def test_bad_imagine_options_are_refused_privately(
    bot: RunningBot, fake: FakeDiscord, options: dict[str, object], expected: str
) -> None:
    jobs_before = await bot.job_count()
    interaction = await fake.slash("imagine", bot.users.alice, prompt="a fox", **options)

    reply = await bot.private_reply(interaction)
    assert expected.lower() in reply.content.lower() and len(reply.content) < 300
    assert await bot.job_count() == jobs_before


@pytest.mark.parametrize(
    ("upload", "expected"),
    [
        ((b"just some words", "notes.txt", "text/plain", None), "not a picture"),
        ((png_bytes(), "huge.png", "image/png", 50_000_000), "the limit is"),
        ((png_bytes(color="red")[:80], "cut-short.png", "image/png", None), "damaged"),
    ],
)
async def test_bad_vary_attachments_are_refused_privately(
    bot: RunningBot, fake: FakeDiscord, upload: tuple, expected: str
) -> None:
    data, filename, content_type, size = upload
    jobs_before = await bot.job_count()
    attachment = fake.upload(data, filename, content_type, size=size)
    interaction = await fake.slash("vary", bot.users.alice, image=attachment)

    reply = await bot.private_reply(interaction)
    assert expected.lower() in reply.content.lower() and len(reply.content) < 300
    assert await bot.job_count() == jobs_before


async def test_a_failing_download_gets_a_short_answer_and_the_bot_keeps_serving(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    attachment = fake.upload(png_bytes(), "gone.png", "image/png")
    fake.uploads.clear()  # Discord's CDN lost the file: the download fails
    interaction = await fake.slash("vary", bot.users.alice, image=attachment)

    reply = await bot.private_reply(interaction)
    assert reply.content == vary.DOWNLOAD_FAILED
    assert "/imagine" in (await fake.wait_reply(await fake.slash("help", bot.users.bob))).content


async def test_model_switch_is_for_admins_only(bot: RunningBot, fake: FakeDiscord) -> None:
    scheduler = bot.services.scheduler
    assert scheduler.current_model == "tiny"

    refused = await bot.private_reply(await fake.slash("model", bot.users.alice, name="tiny2"))
    assert "Only admins" in refused.content
    assert scheduler.current_model == "tiny"

    listing = await fake.wait_reply(await fake.slash("model", bot.users.alice))
    assert "tiny2" in listing.content and scheduler.current_model == "tiny"

    switched = await fake.wait_reply(await fake.slash("model", bot.users.root, name="tiny2"))
    assert "Switched to tiny2" in switched.content and not switched.ephemeral
    assert scheduler.current_model == "tiny2"
    interaction = await fake.slash("imagine", bot.users.bob, prompt="a lighthouse", steps=2)
    message = await bot.result(interaction)
    assert "Model: tiny2" in png_parameters(message.files[0].data)

    # A server's Administrator moderates that server only: the model is everyone's.
    refused = await bot.private_reply(await fake.slash("model", bot.users.boss, name="tiny"))
    assert "Only admins" in refused.content and scheduler.current_model == "tiny2"
    back = await fake.wait_reply(await fake.slash("model", bot.users.root, name="tiny"))
    assert "Switched to tiny" in back.content and scheduler.current_model == "tiny"


async def test_a_server_administrator_moderates_jobs_of_that_server(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    assert bot.services is not None
    await bot.services.scheduler.stop()  # the job waits, so it can be cancelled
    try:
        await fake.wait_reply(await fake.slash("imagine", bot.users.alice, prompt="a secret"))
        overview = await bot.private_reply(await fake.slash("queue", bot.users.boss))
        assert "this server" in overview.content and "a secret" in overview.content
        (job,) = bot.services.scheduler.jobs_of(f"discord:{bot.users.alice.id}")
        cancelled = await fake.wait_reply(await fake.slash("cancel", bot.users.boss, job=job.id))
        assert cancelled.content.startswith("🛑 Cancelled job")
    finally:
        await bot.services.scheduler.start()


async def test_a_refused_token_is_one_clear_config_error(bot: RunningBot) -> None:
    assert bot.services is not None
    config = bot.config
    wrong = dataclasses.replace(config.discord, token="not-the-token")
    services = dataclasses.replace(bot.services, config=dataclasses.replace(config, discord=wrong))

    with pytest.raises(ConfigError, match="Discord rejected the token") as refused:
        await DiscordAdapter(services).start()
    assert "not-the-token" not in str(refused.value)
