"""Pictures in: /vary from photos and documents, the /avatar wizard, and bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.commands import vary

from .fake_bot_api import FakeBotApi
from .harness import RunningBot, button_data, button_labels, image_of, png_bytes

MB = 1024 * 1024


async def test_vary_a_photo_sent_with_the_command_as_caption(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_photo(user, chat, png_bytes(96, 64), caption="/vary a blue fox --steps 2")

    photo = await running_bot.result_photo(chat["id"], mark)
    assert "a blue fox" in photo.result["caption"]
    assert "Strength" in photo.result["caption"]
    assert len(fake.calls_of("getFile", since=mark)) == 1
    (job,) = await running_bot.jobs_of(user)
    assert job.request.kind == "vary" and job.request.init_image is not None


async def test_vary_as_a_reply_to_a_photo(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    original = await fake.send_photo(user, chat, png_bytes(64, 64, "orange"))
    mark = fake.mark()
    await fake.send_text(user, chat, "/vary --steps 2 --strength 0.5", reply_to=original)

    photo = await running_bot.result_photo(chat["id"], mark)
    assert "Strength: 0.5" in photo.result["caption"]


async def test_vary_an_image_document(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_document(
        user,
        chat,
        png_bytes(64, 64, "purple"),
        file_name="drawing.png",
        mime_type="image/png",
        caption="/vary a hat --steps 2",
    )
    photo = await running_bot.result_photo(chat["id"], mark)
    assert image_of(photo.files["photo"].data).size == (64, 64)


async def test_vary_and_upscale_buttons_under_a_result(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_text(user, chat, "/imagine a red fox --steps 2")
    result = (await running_bot.result_photo(chat["id"], mark)).result

    mark = await running_bot.click_button(user, result, "🎨 Vary")
    varied = await running_bot.result_photo(chat["id"], mark)
    assert "Strength" in varied.result["caption"]
    assert varied.result["reply_to_message"]["message_id"] == result["message_id"]

    mark = await running_bot.click_button(user, result, "⬆️ Upscale")
    upscaled = await running_bot.result_photo(chat["id"], mark)
    original = image_of(fake.calls_of("sendPhoto", chat_id=chat["id"])[0].files["photo"].data)
    assert image_of(upscaled.files["photo"].data).width > original.width


async def test_a_failed_download_is_reported_and_the_bot_keeps_serving(
    running_bot: RunningBot,
) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    fake.fail_next("getFile", 1, status=400)
    mark = fake.mark()
    await fake.send_photo(user, chat, png_bytes(), caption="/vary")
    reply = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
    assert reply.result["text"] == vary.DOWNLOAD_FAILED
    assert await running_bot.jobs_of(user) == []

    mark = fake.mark()
    await fake.send_photo(user, chat, png_bytes(), caption="/vary --steps 2")
    await running_bot.result_photo(chat["id"], mark)


async def test_the_avatar_wizard_goes_back_and_forth_to_a_picture(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user("Ava")
    chat = fake.private_chat(user)
    steps = running_bot.services.presets.steps
    mark = fake.mark()
    await fake.send_text(user, chat, "/avatar")
    wizard = (await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])).result
    assert f"1 of {len(steps)}" in wizard["text"] and steps[0].title in wizard["text"]
    assert {"⬅️ Back", "✖️ Cancel", steps[0].options[0].label} <= set(button_labels(wizard))

    async def click(label: str) -> dict[str, Any]:
        mark = await running_bot.click_button(user, wizard, label)
        await fake.next_call("answerCallbackQuery", since=mark)
        edit = await fake.next_call("editMessageText", since=mark, chat_id=chat["id"])
        return edit.result

    second = await click(steps[0].options[1].label)
    assert f"2 of {len(steps)}" in second["text"]
    assert steps[0].options[1].label in second["text"]  # the choice so far is shown
    back = await click("⬅️ Back")
    assert f"1 of {len(steps)}" in back["text"]

    # Someone else in the chat cannot press Ava's buttons.
    stranger = running_bot.new_user("Stranger")
    other_mark = await running_bot.click_button(stranger, wizard, steps[0].options[0].label)
    refusal = await fake.next_call("answerCallbackQuery", since=other_mark)
    assert "started" in refusal.params["text"]

    mark = fake.mark()
    for step in steps:
        last = await click(step.options[0].label)
    assert "step" not in last["text"] and not last.get("reply_markup")
    photo = await running_bot.result_photo(chat["id"], mark)
    (job,) = await running_bot.jobs_of(user)
    assert job.request.kind == "avatar"
    assert "Re-roll" in " ".join(button_labels(photo.result))


async def test_the_avatar_wizard_can_be_cancelled(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_text(user, chat, "/avatar")
    wizard = (await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])).result
    mark = await running_bot.click_button(user, wizard, "✖️ Cancel")
    edit = await fake.next_call("editMessageText", since=mark, chat_id=chat["id"])
    assert "cancelled" in edit.result["text"].lower()
    assert not edit.result.get("reply_markup")
    assert await running_bot.jobs_of(user) == []


async def test_old_wizard_buttons_are_refused_politely(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_text(user, chat, "/avatar")
    wizard = (await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])).result
    first = button_data(wizard, running_bot.services.presets.steps[0].options[0].label)
    mark = fake.mark()
    await fake.click(user, wizard, first.rsplit("|", 1)[0] + "|99")  # no option 99
    answer = await fake.next_call("answerCallbackQuery", since=mark)
    assert "/avatar" in answer.params["text"]
    assert await running_bot.jobs_of(user) == []


Send = Callable[[FakeBotApi, dict[str, Any], dict[str, Any]], Awaitable[Any]]

BAD_INPUT: dict[str, tuple[Send, str]] = {
    "file over the attachment limit": (
        lambda fake, user, chat: fake.send_document(
            user,
            chat,
            png_bytes(),
            file_name="big.png",
            mime_type="image/png",
            caption="/vary",
            declared_size=12 * MB,
        ),
        "MB",
    ),
    "photo over Telegram's 20 MB": (
        lambda fake, user, chat: fake.send_photo(
            user, chat, png_bytes(), caption="/vary", declared_size=25 * MB
        ),
        "20 MB",
    ),
    "document that is not an image": (
        lambda fake, user, chat: fake.send_document(
            user,
            chat,
            b"shopping list",
            file_name="notes.txt",
            mime_type="text/plain",
            caption="/vary",
        ),
        "not a picture",
    ),
    "corrupt image": (
        lambda fake, user, chat: fake.send_document(
            user,
            chat,
            b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20,
            file_name="broken.png",
            mime_type="image/png",
            caption="/vary",
        ),
        "picture",
    ),
    "4,000-character prompt": (
        lambda fake, user, chat: fake.send_text(user, chat, "/imagine " + "a cat " * 667),
        "limit",
    ),
    "unknown parameter": (
        lambda fake, user, chat: fake.send_text(user, chat, "/imagine a cat --colour red"),
        "colour",
    ),
    "vary without a picture": (
        lambda fake, user, chat: fake.send_text(user, chat, "/vary make it blue"),
        "picture",
    ),
    "imagine without a prompt": (
        lambda fake, user, chat: fake.send_text(user, chat, "/imagine"),
        "/imagine",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUT, ids=list(BAD_INPUT))
async def test_bad_input_gets_one_short_message_and_queues_nothing(
    running_bot: RunningBot, case: str
) -> None:
    send, expected = BAD_INPUT[case]
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    mark = fake.mark()
    await send(fake, user, chat)

    reply = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
    text = reply.result["text"]
    assert expected.lower() in text.lower()
    assert len(text) < 200 and "Traceback" not in text
    await asyncio.sleep(0.3)  # room for anything else the bot might (wrongly) send
    answers = [c for c in fake.calls[mark:] if c.chat_id == chat["id"] and c.method != "getFile"]
    assert answers == [reply]
    assert await running_bot.jobs_of(user) == []
    if case in ("file over the attachment limit", "photo over Telegram's 20 MB"):
        assert not fake.calls_of("getFile", since=mark)  # refused before any download


async def test_the_bot_keeps_serving_after_bad_input(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    for send, _ in BAD_INPUT.values():
        await send(fake, user, chat)
    mark = fake.mark()
    await fake.send_text(user, chat, "/imagine a fox --steps 2")
    photo = await running_bot.result_photo(chat["id"], mark)
    assert "a fox" in photo.result["caption"]
