"""Commands end to end: a user types in Telegram, the real bot paints with the tiny model."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging

import pytest

from bot.adapters.telegram import TelegramAdapter
from bot.config import ConfigError

from .harness import (
    ADMIN_ID,
    RunningBot,
    button_labels,
    image_of,
    png_bytes,
    png_parameters,
)


async def test_start_registers_the_command_menu_and_answers_start_and_help(
    running_bot: RunningBot,
) -> None:
    fake = running_bot.fake
    names = [command["command"] for command in fake.commands]
    assert {"imagine", "vary", "avatar", "queue", "cancel", "model", "help"} <= set(names)

    user = running_bot.new_user()
    chat = fake.private_chat(user)
    for command in ("/start", "/help"):
        mark = fake.mark()
        sent = await fake.send_text(user, chat, command)
        reply = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
        assert "/imagine" in reply.result["text"]
        assert reply.result["reply_to_message"]["message_id"] == sent["message_id"]


async def test_imagine_sends_a_photo_and_its_png_carries_the_a1111_parameters(
    running_bot: RunningBot,
) -> None:
    fake = running_bot.fake
    user = running_bot.new_user("Fox Fan")
    chat = fake.private_chat(user)
    mark = fake.mark()
    command = await fake.send_text(user, chat, "/imagine a red fox --seed 7 --steps 2 --no blurry")

    status = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
    assert status.result["text"].startswith(("⏳", "🎨"))
    assert status.result["reply_to_message"]["message_id"] == command["message_id"]
    action = await fake.next_call("sendChatAction", since=mark, chat_id=chat["id"])
    assert action.params["action"] == "upload_photo"

    photo = await running_bot.result_photo(chat["id"], mark)
    picture = image_of(photo.files["photo"].data)
    assert picture.size == (64, 64)
    caption = photo.result["caption"]
    assert "a red fox" in caption and "Seed: 7" in caption and "Model: tiny" in caption
    labels = button_labels(photo.result)
    for label in ("🔁 Re-roll", "🎨 Vary", "⬆️ Upscale", "📄 PNG", "🗑 Delete"):
        assert label in labels

    # The status message made way for the picture: the chat shows command and photo only.
    deleted = await fake.next_call("deleteMessage", since=mark, chat_id=chat["id"])
    assert deleted.params["message_id"] == status.result["message_id"]
    shown = [m["message_id"] for m in fake.chat_messages(chat["id"])]
    assert shown == [command["message_id"], photo.result["message_id"]]

    mark = await running_bot.click_button(user, photo.result, "📄 PNG")
    document = await fake.next_call("sendDocument", since=mark, chat_id=chat["id"])
    assert document.files["document"].filename.endswith(".png")
    parameters = png_parameters(document.files["document"].data)
    assert parameters.startswith("a red fox\nNegative prompt: blurry\n")
    assert "Steps: 2" in parameters and "Seed: 7" in parameters and "Model: tiny" in parameters
    await fake.next_call("answerCallbackQuery", since=mark)


async def test_one_status_message_shows_progress_and_is_edited_sparingly(
    running_bot: RunningBot,
) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_text(user, chat, "/imagine a lighthouse at dusk --steps 40")
    await running_bot.result_photo(chat["id"], mark)

    status, *others = [c for c in fake.calls_of("sendMessage", since=mark, chat_id=chat["id"])]
    assert others == []  # one status message for the whole job
    edits = fake.calls_of("editMessageText", since=mark, chat_id=chat["id"])
    assert edits and all(e.params["message_id"] == status.result["message_id"] for e in edits)
    assert any("/40" in e.params["text"] for e in edits)  # step progress, like 12/40
    times = [status.at] + [e.at for e in edits]
    interval = running_bot.adapter.status_interval
    assert all(later - earlier >= interval * 0.9 for earlier, later in itertools.pairwise(times))
    actions = fake.calls_of("sendChatAction", since=mark, chat_id=chat["id"])
    assert len(actions) >= 2  # repeated while painting: one lasts only 5 s


async def test_imagine_with_count_two_sends_an_album_and_a_keyboard(
    running_bot: RunningBot,
) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_text(user, chat, "/imagine a blue hat --n 2 --steps 2 --seed 11")

    album = await fake.next_call("sendMediaGroup", since=mark, chat_id=chat["id"])
    assert len(album.result) == 2
    pictures = [image_of(upload.data) for upload in album.files.values()]
    assert [p.size for p in pictures] == [(64, 64), (64, 64)]
    assert pictures[0].tobytes() != pictures[1].tobytes()  # two seeds, two pictures
    keyboard = await fake.next_call(
        "sendMessage", since=mark, chat_id=chat["id"], where=lambda c: "reply_markup" in c.result
    )
    labels = button_labels(keyboard.result)
    assert {"V1", "V2", "U1", "U2", "🔁 Re-roll"} <= set(labels)
    assert "a blue hat" in keyboard.result["text"]


async def test_imagine_addressed_to_the_bot_works_in_a_group(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user("Grouper")
    group = fake.group_chat(-100123)
    mark = fake.mark()
    await fake.send_text(user, group, "/imagine@SomeOtherBot a dog --steps 2")
    await fake.send_photo(user, group, png_bytes(), caption="/vary@SomeOtherBot --steps 2")
    await fake.send_text(user, group, f"/imagine@{fake.bot_username} a dog --steps 2")

    photo = await running_bot.result_photo(group["id"], mark)
    assert "a dog" in photo.result["caption"]
    # Only the command addressed to Atelier was taken.
    assert [job.request.kind for job in await running_bot.jobs_of(user)] == ["imagine"]
    assert not fake.calls_of("getFile", since=mark)
    assert len(fake.calls_of("sendPhoto", since=mark, chat_id=group["id"])) == 1


async def test_queue_lists_a_waiting_job_and_cancel_stops_it(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    mark = fake.mark()
    # 40 steps take the tiny model a few seconds on a CPU: still there for /queue.
    await fake.send_text(user, chat, "/imagine a lighthouse --steps 40")
    await fake.send_text(user, chat, "/imagine a cat at dusk --steps 40")
    statuses = await fake.wait_for_calls("sendMessage", 2, since=mark, chat_id=chat["id"])

    mark = fake.mark()
    await fake.send_text(user, chat, "/queue")
    queue_reply = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
    jobs = await running_bot.jobs_of(user)
    assert len(jobs) == 2 and all(job.id in queue_reply.result["text"] for job in jobs)

    for _ in jobs:  # newest first, then the one painting
        mark = fake.mark()
        await fake.send_text(user, chat, "/cancel")
        reply = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
        assert "Cancelled" in reply.result["text"]
    for status in statuses:
        await fake.next_call(
            "editMessageText",
            since=0,
            chat_id=chat["id"],
            where=lambda c, s=status: (
                c.params["message_id"] == s.result["message_id"] and "Cancelled" in c.params["text"]
            ),
        )
    assert all(job.status == "cancelled" for job in await running_bot.jobs_of(user))
    await asyncio.sleep(0.3)
    assert not fake.calls_of("sendPhoto", chat_id=chat["id"])


async def test_a_flood_limited_photo_is_delivered_after_retry_after(
    running_bot: RunningBot,
) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    fake.fail_next("sendPhoto", 1, status=429, retry_after=1)
    mark = fake.mark()
    await fake.send_text(user, chat, "/imagine a red hat --steps 2")

    photo = await running_bot.result_photo(chat["id"], mark)
    refused = [c for c in fake.calls[mark:] if c.method == "sendPhoto" and c.refused == 429]
    assert len(refused) == 1
    assert "a red hat" in photo.result["caption"]


async def test_bad_gateway_answers_are_retried(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    fake.fail_next("sendPhoto", 2, status=502)
    mark = fake.mark()
    await fake.send_text(user, chat, "/imagine a blue fox --steps 2")

    photo = await running_bot.result_photo(chat["id"], mark)
    assert len([c for c in fake.calls[mark:] if c.refused == 502]) == 2
    assert "a blue fox" in photo.result["caption"]


async def test_the_token_never_reaches_the_log(
    running_bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    caplog.set_level(logging.INFO)
    mark = fake.mark()
    await fake.send_text(user, chat, "/imagine a cat --steps 2")
    await running_bot.result_photo(chat["id"], mark)
    # httpx would log each request URL (token included) at INFO if left alone.
    assert not [r for r in caplog.records if fake.token in r.getMessage()]

    # python-telegram-bot logs its API URLs at DEBUG when a bot is built.
    caplog.set_level(logging.DEBUG)
    TelegramAdapter(running_bot.services)
    urls = [r.getMessage() for r in caplog.records if "API URL" in r.getMessage()]
    assert urls and not [url for url in urls if fake.token in url]


async def test_non_admins_cannot_switch_the_model(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user("Sneaky")
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_text(user, chat, "/model tiny2")
    reply = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
    assert "admin" in reply.result["text"].lower()
    assert running_bot.services.scheduler.current_model == "tiny"
    assert await running_bot.services.store.get_setting("current_model") in (None, "tiny")

    mark = fake.mark()
    await fake.send_text(user, chat, "/model")
    listing = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
    assert "tiny2" in listing.result["text"]


async def test_an_admin_switches_the_model_and_new_pictures_say_so(
    running_bot: RunningBot,
) -> None:
    fake = running_bot.fake
    admin = running_bot.new_user("Admin", user_id=ADMIN_ID)
    chat = fake.private_chat(admin)
    try:
        mark = fake.mark()
        await fake.send_text(admin, chat, "/model tiny2")
        reply = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"], timeout=60)
        assert "tiny2" in reply.result["text"]
        assert running_bot.services.scheduler.current_model == "tiny2"

        mark = fake.mark()
        await fake.send_text(admin, chat, "/imagine a hat --steps 2")
        photo = await running_bot.result_photo(chat["id"], mark)
        mark = await running_bot.click_button(admin, photo.result, "📄 PNG")
        document = await fake.next_call("sendDocument", since=mark, chat_id=chat["id"])
        assert "Model: tiny2" in png_parameters(document.files["document"].data)
    finally:
        # Later tests in this module expect the default model.
        await running_bot.services.scheduler.switch_model("tiny")


async def test_a_wrong_token_fails_at_start(running_bot: RunningBot) -> None:
    config = running_bot.services.config
    wrong = dataclasses.replace(config.telegram, token="999:WRONG")
    services = dataclasses.replace(
        running_bot.services, config=dataclasses.replace(config, telegram=wrong)
    )
    adapter = TelegramAdapter(services, poll_timeout=1)
    with pytest.raises(ConfigError) as refused:
        await adapter.start()
    # One line, without the token (python-telegram-bot's own message quotes it).
    assert str(refused.value) == "Telegram rejected the token (401)"
    assert refused.value.__cause__ is None and refused.value.__suppress_context__
    assert not adapter.app.running
