"""/settings (ephemeral, with selects; results to DMs), /whoami, and a command the bot
does not have, through discord.py and the fake Discord."""

from __future__ import annotations

import io

from PIL import Image

from bot.adapters.discord.sender import SENT_TO_DMS
from bot.records import UserSettings

from .fake_discord import EPHEMERAL, FakeDiscord, FakeMessage
from .harness import RunningBot


def _size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def _component(message: FakeMessage, custom_id: str) -> dict:
    return next(
        component
        for row in message.components
        for component in row["components"]
        if component.get("custom_id") == custom_id
    )


def _button_id(message: FakeMessage, label: str) -> str:
    for row in message.components:
        for component in row["components"]:
            if component.get("label") == label:
                return component["custom_id"]
    raise AssertionError(f"no button {label!r} among {message.labels}")


async def test_settings_is_an_ephemeral_panel_of_selects_and_survives_a_restart(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    alice = bot.users.alice
    interaction = await fake.slash("settings", alice, negative="blurry")
    panel = await fake.wait_reply(interaction)
    assert panel.flags & EPHEMERAL
    assert "blurry" in panel.content
    aspect = _component(panel, "setmenu:aspect")
    assert aspect["type"] == 3 and aspect["placeholder"] == "📐 Aspect"
    values = [option["value"] for option in aspect["options"]]
    assert "set:aspect:16:9" in values
    assert _component(panel, "setmenu:steps")["type"] == 3
    assert _component(panel, "setmenu:sampler")["type"] == 3
    assert "📬 Results to DMs: off" in panel.labels

    picked = await fake.select(panel, "setmenu:aspect", ["set:aspect:16:9"], alice)
    await fake.wait_for(lambda: picked.callbacks, what="the select's answer")
    assert picked.first_callback is not None and picked.first_callback["type"] == 7
    assert "Aspect: 16:9" in panel.content  # edited in place
    chosen = [o for o in _component(panel, "setmenu:aspect")["options"] if o.get("default")]
    assert [option["label"] for option in chosen] == ["16:9"]

    asked = await fake.slash("imagine", alice, prompt="a wide valley", model="tiny2")
    (picture,) = (await bot.result(asked)).files
    assert _size(picture.data) == (192, 128)  # 16:9 at tiny2's 128x128 area

    await bot.restart()
    asked = await fake.slash("imagine", alice, prompt="a wide valley again", model="tiny2")
    (picture,) = (await bot.result(asked)).files
    assert _size(picture.data) == (192, 128)
    assert bot.services is not None
    settings = await bot.services.store.user_settings(f"discord:{alice.id}")
    assert settings == UserSettings(aspect="16:9", negative="blurry")


async def test_results_go_to_dms_when_asked_unless_dms_are_closed(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    bob = bot.users.bob
    interaction = await fake.slash("settings", bob)
    panel = await fake.wait_reply(interaction)
    pressed = await fake.click(panel, _button_id(panel, "📬 Results to DMs: off"), bob)
    await fake.wait_for(lambda: pressed.callbacks, what="the press's answer")
    assert "📬 Results to DMs: on" in panel.labels

    asked = await fake.slash("imagine", bob, prompt="a private garden", steps=1)

    def in_dm() -> FakeMessage | None:
        dm = fake.dm_channels.get(bob.id)
        return next((m for m in fake.messages.values() if m.channel_id == dm and m.files), None)

    message = await fake.wait_for(in_dm, what="a picture in the DMs")
    assert "a private garden" in message.content
    assert "🔁 Re-roll" in message.labels
    await fake.wait_for(
        lambda: asked.original is not None and asked.original.content == SENT_TO_DMS,
        what="the response pointing to the DMs",
    )
    assert asked.original is not None and not asked.original.files

    # DMs closed: the picture arrives where it was asked for.
    fake.closed_dms.add(bob.id)
    asked = await fake.slash("imagine", bob, prompt="a closed door", steps=1)
    result = await bot.result(asked)
    assert "a closed door" in result.content and result is asked.original


async def test_whoami_answers_privately_with_the_admins_line(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    interaction = await fake.slash("whoami", bot.users.alice)
    reply = await fake.wait_reply(interaction)
    assert reply.flags & EPHEMERAL
    alice_id = bot.users.alice.id
    assert f"Your Discord user id is {alice_id}." in reply.content
    assert f'[admins]\ndiscord = ["{alice_id}"]' in reply.content


async def test_a_command_the_bot_lacks_is_answered_with_a_pointer_to_help(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    interaction = await fake.slash_unregistered("imagin", bot.users.alice)
    reply = await bot.private_reply(interaction)
    assert reply.content == (
        "I don't know /imagin. Did you mean /imagine? Send /help to see what I can do."
    )
