"""The editing loop on Telegram: the 🖌 Region grid edited in place (and after a
restart), Repaint, zoom out and pan, through python-telegram-bot and the fake Bot API."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from bot.commands import canvas, inpaint, region, remix

from .fake_bot_api import FakeBotApi
from .harness import (
    RunningBot,
    button_labels,
    image_of,
    png_bytes,
    png_parameters,
    telegram_config,
)


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(image_of(data).convert("RGB"), dtype=np.int16)


async def test_region_grid_survives_a_restart_and_repaints_only_the_chosen_cells(
    fake_api: FakeBotApi,
    tiny_model_dir: Path,
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    fake = fake_api
    config_path = write_config(tmp_path, telegram_config(fake, tiny_model_dir))
    bot = await RunningBot.start(fake, config_path)
    try:
        user = bot.new_user("Rui")
        chat = fake.private_chat(user)
        mark = fake.mark()
        await fake.send_text(user, chat, "/imagine a red barn --steps 2 --seed 9 --size 96x96")
        sent = await bot.result_photo(chat["id"], mark)
        result, before = sent.result, pixels(sent.files["photo"].data)
        assert {"🖌 Region", "🔍 Zoom out", "⬅️ Left", "🔽 Down"} <= set(button_labels(result))

        mark = await bot.click_button(user, result, "🖌 Region")
        grid = (await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])).result
        assert grid["text"].startswith(region.INTRO)
        assert grid["reply_to_message"]["message_id"] == result["message_id"]
        rows = grid["reply_markup"]["inline_keyboard"]
        assert [len(row) for row in rows] == [3, 3, 3, 3]

        mark = await bot.click_button(user, grid, "Repaint")
        answer = await fake.next_call("answerCallbackQuery", since=mark)
        assert answer.params["text"] == region.NOTHING_CHOSEN

        mark = await bot.click_button(user, grid, "⬜ 5")
        await fake.next_call("editMessageText", since=mark, chat_id=chat["id"])
        assert "✅ 5" in button_labels(fake.current(grid))
    finally:
        await bot.stop()

    bot = await RunningBot.start(fake, config_path)
    try:
        mark = await bot.click_button(user, grid, "⬜ 4")
        await fake.next_call("editMessageText", since=mark, chat_id=chat["id"])
        assert {"✅ 4", "✅ 5"} <= set(button_labels(fake.current(grid)))

        mark = await bot.click_button(user, grid, "Repaint")
        repainted = await bot.result_photo(chat["id"], mark)
        after = pixels(repainted.files["photo"].data)
        mask = np.asarray(canvas.cell_mask(0b11000, 96, 96))
        assert np.abs(after - before)[mask == 0].max() <= 2
        assert np.abs(after - before)[mask == 255].mean() > 3
        assert "a red barn" in repainted.result["caption"]

        mark = await bot.click_button(user, result, "⬅️ Left")
        panned = await bot.result_photo(chat["id"], mark)
        wide = pixels(panned.files["photo"].data)
        assert wide.shape == (96, 144, 3)
        feather = canvas.feather_width(96, 96)
        assert np.abs(wide[:, 48 + feather :] - before[:, feather:]).max() <= 2

        mark = await bot.click_button(user, result, "🔍 Zoom out")
        zoomed = await bot.result_photo(chat["id"], mark)
        assert pixels(zoomed.files["photo"].data).shape == (96, 96, 3)

        mark = await bot.click_button(user, result, "📄 PNG")
        document = await fake.next_call("sendDocument", since=mark, chat_id=chat["id"])
        assert png_parameters(document.files["document"].data).startswith("a red barn")

        mark = await bot.click_button(user, fake.current(grid), "✖️ Cancel")
        closed = await fake.next_call("editMessageText", since=mark, chat_id=chat["id"])
        assert closed.result["text"] == region.CLOSED and "reply_markup" not in closed.result
    finally:
        await bot.stop()


def mask_png(width: int, height: int, white: tuple[int, int, int, int] | None) -> bytes:
    mask = Image.new("L", (width, height), 0)
    if white is not None:
        mask.paste(255, white)
    out = io.BytesIO()
    mask.save(out, format="PNG")
    return out.getvalue()


async def test_inpaint_with_the_mask_as_a_reply_to_the_photo(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user("Ines")
    chat = fake.private_chat(user)
    photo = await fake.send_photo(user, chat, png_bytes(64, 64, "orange"))

    mark = fake.mark()
    black = mask_png(64, 64, None)
    await fake.send_document(
        user,
        chat,
        black,
        file_name="mask.png",
        mime_type="image/png",
        caption="/inpaint a cat",
        reply_to=photo,
    )
    refusal = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
    assert refusal.result["text"] == inpaint.NOTHING_TO_REPAINT

    mark = fake.mark()
    await fake.send_photo(user, chat, png_bytes(64, 64, "orange"), caption="/inpaint a cat")
    refusal = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
    assert refusal.result["text"] == inpaint.NO_MASK

    mark = fake.mark()
    await fake.send_document(
        user,
        chat,
        mask_png(32, 32, (0, 0, 16, 32)),
        file_name="mask.png",
        mime_type="image/png",
        caption="/inpaint a cat --steps 2",
        reply_to=photo,
    )
    result = await running_bot.result_photo(chat["id"], mark)
    after = pixels(result.files["photo"].data)
    assert after.shape == (64, 64, 3)
    assert np.abs(after[:, 34:] - np.array([255, 165, 0])).max() <= 2  # kept: orange
    assert "a cat" in result.result["caption"]
    (job,) = [j for j in await running_bot.jobs_of(user) if j.status.painted]
    assert job.request.kind == "inpaint" and job.request.mask_image is not None


async def test_remix_asks_with_force_reply_and_offers_to_keep_the_prompt(
    running_bot: RunningBot,
) -> None:
    fake = running_bot.fake
    user = running_bot.new_user("Remy")
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_text(user, chat, "/imagine a red barn --steps 2")
    result = (await running_bot.result_photo(chat["id"], mark)).result

    async def ask(label: str) -> tuple[dict, dict]:
        mark = await running_bot.click_button(user, result, label)
        question, keep = await fake.wait_for_calls("sendMessage", 2, since=mark, chat_id=chat["id"])
        assert question.params["reply_markup"]["force_reply"] is True
        return question.result, keep.result

    question, keep = await ask("🔀 Remix")
    assert question["text"].endswith("Now: a red barn")
    assert button_labels(keep) == [remix.KEEP_LABEL]
    mark = fake.mark()
    await fake.send_text(user, chat, "a blue barn", reply_to=question)
    photo = await running_bot.result_photo(chat["id"], mark)
    assert photo.result["caption"].startswith("a blue barn")
    mark = await running_bot.click_button(user, photo.result, "📄 PNG")
    document = await fake.next_call("sendDocument", since=mark, chat_id=chat["id"])
    assert png_parameters(document.files["document"].data).startswith("a blue barn")
    # Someone else's reply, or a second one, paints nothing.
    mark = fake.mark()
    await fake.send_text(user, chat, "a barn again", reply_to=question)

    question, keep = await ask("🔀 Remix")
    mark = await running_bot.click_button(user, keep, remix.KEEP_LABEL)
    photo = await running_bot.result_photo(chat["id"], mark)
    assert photo.result["caption"].startswith("a red barn")
    assert "reply_markup" not in fake.current(keep)  # the button went
    assert not [
        c
        for c in fake.calls_of("sendPhoto", chat_id=chat["id"])
        if "again" in c.result.get("caption", "")
    ]

    # Remix on in /settings: 🎨 Vary asks first.
    mark = fake.mark()
    await fake.send_text(user, chat, "/settings")
    panel = (await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])).result
    mark = await running_bot.click_button(user, panel, "🔀 Remix: off")
    await fake.next_call("editMessageText", since=mark, chat_id=chat["id"])
    question, _ = await ask("🎨 Vary")
    mark = fake.mark()
    await fake.send_text(user, chat, "a green barn", reply_to=question)
    photo = await running_bot.result_photo(chat["id"], mark)
    assert photo.result["caption"].startswith("a green barn")
    assert "Strength: 0.6" in photo.result["caption"]

    # ...and so does the grid's Repaint; keeping the prompt repaints at once.
    mark = await running_bot.click_button(user, result, "🖌 Region")
    grid = (await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])).result
    mark = await running_bot.click_button(user, grid, "⬜ 1")
    await fake.next_call("editMessageText", since=mark, chat_id=chat["id"])
    mark = await running_bot.click_button(user, fake.current(grid), "Repaint")
    question, keep = await fake.wait_for_calls("sendMessage", 2, since=mark, chat_id=chat["id"])
    assert "Repaint" in question.result["text"]
    mark = await running_bot.click_button(user, keep.result, remix.KEEP_LABEL)
    photo = await running_bot.result_photo(chat["id"], mark)
    assert photo.result["caption"].startswith("a red barn")
    jobs = await running_bot.jobs_of(user)
    assert [j.request.kind for j in jobs if j.request.kind == "inpaint"] == ["inpaint"]
