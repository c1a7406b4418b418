"""Live previews on Telegram: the status becomes a photo of the picture so far, its
picture swapped with editMessageMedia within the throttle, and the result replaces it.
With previews off the status stays text."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from itertools import pairwise
from pathlib import Path

import pytest

from .fake_bot_api import ApiCall, FakeBotApi
from .harness import RunningBot, image_of, telegram_config

STATUS_INTERVAL = 0.2  # per job
PREVIEW_INTERVAL = 0.25  # per chat
PREVIEW_EVERY = 0.05  # the engine's
# A little slack for the loop's clock against the fake's (both monotonic, not the same reads).
SLACK = 0.05


async def start_bot(
    fake: FakeBotApi,
    tiny_model_dir: Path,
    write_config: Callable[..., Path],
    folder: Path,
    preview_every: float,
) -> RunningBot:
    path = write_config(folder, telegram_config(fake, tiny_model_dir))
    text = path.read_text().replace("preview_every = 0\n", f"preview_every = {preview_every}\n", 1)
    path.write_text(text)
    return await RunningBot.start(
        fake, path, status_interval=STATUS_INTERVAL, preview_interval=PREVIEW_INTERVAL
    )


@pytest.fixture(scope="module")
async def previewing(
    tiny_model_dir: Path,
    write_config: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningBot]:
    fake = FakeBotApi()
    await fake.start()
    bot = await start_bot(
        fake, tiny_model_dir, write_config, tmp_path_factory.mktemp("tg-on"), PREVIEW_EVERY
    )
    yield bot
    await bot.stop()
    await fake.close()


@pytest.fixture(scope="module")
async def not_previewing(
    tiny_model_dir: Path,
    write_config: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningBot]:
    fake = FakeBotApi()
    await fake.start()
    bot = await start_bot(fake, tiny_model_dir, write_config, tmp_path_factory.mktemp("tg-off"), 0)
    yield bot
    await bot.stop()
    await fake.close()


def status_calls(fake: FakeBotApi, chat_id: int, since: int) -> list[ApiCall]:
    """Every change the bot made to status messages in the chat, in order."""
    kinds = {
        "sendMessage",
        "sendPhoto",
        "editMessageText",
        "editMessageCaption",
        "editMessageMedia",
    }
    return [
        call
        for call in fake.calls[since:]
        if call.method in kinds and call.refused is None and call.chat_id == chat_id
    ]


def is_preview(call: ApiCall) -> bool:
    """A status photo: sent with "Painting" as its caption, or its picture swapped."""
    if call.method == "editMessageMedia":
        return True
    return call.method == "sendPhoto" and call.params.get("caption", "").startswith("🎨")


async def test_previews_arrive_while_it_paints_and_the_result_replaces_them(
    previewing: RunningBot,
) -> None:
    fake = previewing.fake
    user = previewing.new_user()
    chat = fake.group_chat(-4242)
    mark = fake.mark()
    await fake.send_text(user, chat, "/imagine a lighthouse at dusk --steps 20")
    result = await fake.next_call(
        "sendPhoto",
        since=mark,
        chat_id=chat["id"],
        where=lambda call: not is_preview(call),
        timeout=120,  # a loaded CI runner may take a while to start the engine
    )

    calls = status_calls(fake, chat["id"], mark)
    previews = [call for call in calls if is_preview(call)]
    # The text status became a photo, whose picture was then swapped in place.
    assert previews[0].method == "sendPhoto"
    # At least two previews shown: the photo, then its picture swapped in place.
    assert len(previews) >= 2
    assert [call.method for call in previews[1:]] == ["editMessageMedia"] * (len(previews) - 1)
    status_id = previews[0].result["message_id"]
    for call in previews:
        upload = next(iter(call.files.values()))
        picture = image_of(upload.data)
        assert picture.format == "JPEG" and picture.size == (64, 64)
    for call in previews[1:]:
        assert call.params["message_id"] == status_id
        assert call.params["media"]["caption"].startswith("🎨 Painting…")

    # Within the throttle: a preview per chat at most every PREVIEW_INTERVAL, and any
    # status change of the job at most every STATUS_INTERVAL.
    preview_times = [call.at for call in previews]
    assert all(b - a >= PREVIEW_INTERVAL - SLACK for a, b in pairwise(preview_times))
    edit_times = [call.at for call in calls if call.at < result.at and call.method != "sendMessage"]
    assert all(b - a >= STATUS_INTERVAL - SLACK for a, b in pairwise(edit_times))

    # The result replaces the preview: the full PNG arrives, the status photo is gone.
    assert image_of(result.files["photo"].data).format == "PNG"
    assert "a lighthouse at dusk" in result.result["caption"]
    await fake.next_call(
        "deleteMessage", since=mark, where=lambda call: call.params["message_id"] == status_id
    )
    bot_messages = [m for m in fake.chat_messages(chat["id"]) if m["from"]["is_bot"]]
    assert [message["message_id"] for message in bot_messages] == [result.result["message_id"]]


async def test_a_cancelled_job_leaves_no_preview_behind(previewing: RunningBot) -> None:
    fake = previewing.fake
    user = previewing.new_user()
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_text(user, chat, "/imagine a slow painting --steps 50")
    status = await fake.next_call(
        "sendPhoto", since=mark, chat_id=chat["id"], where=is_preview, timeout=120
    )
    await fake.send_text(user, chat, "/cancel")

    status_id = status.result["message_id"]
    await fake.next_call(
        "deleteMessage", since=mark, where=lambda call: call.params["message_id"] == status_id
    )
    await fake.next_call(
        "sendMessage",
        since=mark,
        chat_id=chat["id"],
        where=lambda call: call.params["text"] == "🛑 Cancelled",
    )
    bot_messages = [m for m in fake.chat_messages(chat["id"]) if m["from"]["is_bot"]]
    assert not any("photo" in message for message in bot_messages)


async def test_with_previews_off_the_status_stays_text(not_previewing: RunningBot) -> None:
    fake = not_previewing.fake
    user = not_previewing.new_user()
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_text(user, chat, "/imagine a lighthouse at dusk --steps 20")
    result = await fake.next_call("sendPhoto", since=mark, chat_id=chat["id"], timeout=120)

    assert fake.calls_of("editMessageMedia", since=mark) == []
    assert fake.calls_of("editMessageCaption", since=mark) == []
    assert fake.calls_of("sendPhoto", since=mark) == [result]
    assert image_of(result.files["photo"].data).format == "PNG"
