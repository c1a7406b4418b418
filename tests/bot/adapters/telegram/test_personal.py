"""/settings (an inline keyboard edited in place, results to the private chat), /whoami,
and commands the bot does not have, through python-telegram-bot and the fake Bot API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.adapters.telegram.sender import SENT_TO_PRIVATE_CHAT
from bot.adapters.telegram.surface import SENT_PRIVATELY
from bot.records import UserSettings

from .fake_bot_api import FakeBotApi
from .harness import RunningBot, button_labels, image_of, telegram_config


@pytest.fixture(scope="module")
async def running_bot(
    fake_api: FakeBotApi,
    tiny_model_dir: Path,
    write_config: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningBot]:
    # A model with a larger native size, so an aspect ratio shows in the picture.
    extra = f"""
[models.wide]
source = "{tiny_model_dir}"
default_steps = 1
width = 128
height = 128
"""
    folder = tmp_path_factory.mktemp("telegram-personal")
    config_path = write_config(folder, telegram_config(fake_api, tiny_model_dir) + extra)
    bot = await RunningBot.start(fake_api, config_path)
    yield bot
    await bot.stop()


async def test_settings_panel_is_edited_in_place_and_the_next_picture_follows_it(
    running_bot: RunningBot,
) -> None:
    fake = running_bot.fake
    user = running_bot.new_user("Setter")
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_text(user, chat, "/settings --steps 2 --no blurry")
    panel = (await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])).result
    assert "Steps: 2" in panel["text"] and "blurry" in panel["text"]
    labels = button_labels(panel)
    assert "📐 Aspect: Model default" in labels and "🔢 Steps: 2" in labels
    assert {"🔀 Remix: off", "📬 Results to DMs: off", "🚫 Clear negative"} <= set(labels)

    mark = await running_bot.click_button(user, panel, "📐 Aspect: Model default")
    opened = await fake.next_call("editMessageText", since=mark, chat_id=chat["id"])
    assert opened.params["message_id"] == panel["message_id"]
    assert {"✅ Model default", "9:16", "⬅️ Back"} <= set(button_labels(opened.result))

    mark = await running_bot.click_button(user, panel, "9:16")
    chosen = await fake.next_call("editMessageText", since=mark, chat_id=chat["id"])
    assert chosen.params["message_id"] == panel["message_id"]
    assert "Aspect: 9:16" in chosen.result["text"]
    assert "📐 Aspect: 9:16" in button_labels(chosen.result)
    # Only the one panel message: every press edited it.
    assert len(fake.calls_of("sendMessage", since=mark, chat_id=chat["id"])) == 0

    mark = fake.mark()
    await fake.send_text(user, chat, "/imagine a tall lighthouse --model wide")
    photo = await running_bot.result_photo(chat["id"], mark)
    assert image_of(photo.files["photo"].data).size == (128, 192)  # 9:16 at 128x128's area
    assert "Steps: 2" in photo.result["caption"] and "blurry" in photo.result["caption"]

    mark = await running_bot.click_button(user, fake.current(panel), "↩️ Reset all")
    reset = await fake.next_call("editMessageText", since=mark, chat_id=chat["id"])
    assert "📐 Aspect: Model default" in button_labels(reset.result)
    assert await running_bot.services.store.user_settings(f"telegram:{user['id']}") == (
        UserSettings()
    )


async def test_results_go_to_the_private_chat_when_asked_and_to_the_group_if_it_cannot(
    running_bot: RunningBot,
) -> None:
    fake = running_bot.fake
    group = fake.group_chat(-100777)
    user = running_bot.new_user("Shy")
    private = fake.private_chat(user)  # they started a chat with the bot once

    mark = fake.mark()
    await fake.send_text(user, group, "/settings")
    pointer = await fake.next_call("sendMessage", since=mark, chat_id=group["id"])
    assert pointer.result["text"] == SENT_PRIVATELY
    panel = (await fake.next_call("sendMessage", since=mark, chat_id=private["id"])).result
    mark = await running_bot.click_button(user, panel, "📬 Results to DMs: off")
    edited = await fake.next_call("editMessageText", since=mark, chat_id=private["id"])
    assert "📬 Results to DMs: on" in button_labels(edited.result)

    mark = fake.mark()
    command = await fake.send_text(user, group, "/imagine a quiet cat --steps 1")
    photo = await running_bot.result_photo(private["id"], mark)
    assert "a quiet cat" in photo.result["caption"]
    assert "🔁 Re-roll" in button_labels(photo.result)
    assert not fake.calls_of("sendPhoto", since=mark, chat_id=group["id"])
    # The status in the group says where the picture went.
    pointer = await fake.next_call(
        "editMessageText",
        since=mark,
        chat_id=group["id"],
        where=lambda c: c.params["text"] == SENT_TO_PRIVATE_CHAT,
    )
    assert pointer.result["reply_to_message"]["message_id"] == command["message_id"]
    assert fake.chat_messages(group["id"])[-1]["text"] == SENT_TO_PRIVATE_CHAT

    # Someone who never started a private chat still gets the picture, in the group.
    stranger = running_bot.new_user("Stranger")
    await running_bot.services.store.set_user_settings(
        f"telegram:{stranger['id']}", UserSettings(dm_results=True)
    )
    mark = fake.mark()
    await fake.send_text(stranger, group, "/imagine a loud dog --steps 1")
    photo = await running_bot.result_photo(group["id"], mark)
    assert "a loud dog" in photo.result["caption"]
    refused = [c for c in fake.calls[mark:] if c.method == "sendPhoto" and c.refused == 403]
    assert len(refused) == 1


async def test_whoami_gives_the_id_as_admins_wants_it(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user("Newadmin")
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_text(user, chat, "/whoami")
    reply = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
    text = reply.result["text"]
    assert f"Your Telegram user id is {user['id']}." in text
    assert f'[admins]\ntelegram = ["{user["id"]}"]' in text
    assert "whoami" in [command["command"] for command in fake.commands]


async def test_unknown_commands_get_one_line_pointing_to_help(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user("Typo")
    chat = fake.private_chat(user)
    mark = fake.mark()
    sent = await fake.send_text(user, chat, "/imagin a red fox")
    reply = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
    assert reply.result["text"] == (
        "I don't know /imagin. Did you mean /imagine? Send /help to see what I can do."
    )
    assert reply.result["reply_to_message"]["message_id"] == sent["message_id"]

    group = fake.group_chat(-100888)
    mark = fake.mark()
    await fake.send_text(user, group, "/frobnicate")  # for any bot in the group: not ours
    await fake.send_text(user, group, "/frobnicate@SomeOtherBot")
    await fake.send_text(user, group, "/help@SomeOtherBot")
    await fake.send_text(user, group, f"/frobnicate@{fake.bot_username}")
    reply = await fake.next_call("sendMessage", since=mark, chat_id=group["id"])
    assert reply.result["text"].startswith("I don't know /frobnicate.")
    await fake.send_text(user, group, "/help")
    help_reply = await fake.next_call(
        "sendMessage",
        since=mark,
        chat_id=group["id"],
        where=lambda c: "/imagine" in c.params["text"],
    )
    await asyncio.sleep(0.3)  # anything else the bot would say has been said by now
    answers = fake.calls_of("sendMessage", since=mark, chat_id=group["id"])
    assert [a.result["message_id"] for a in answers] == [
        reply.result["message_id"],
        help_reply.result["message_id"],
    ]
