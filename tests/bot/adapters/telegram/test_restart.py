"""A restart loses nothing: result buttons keep working, waiting jobs are delivered."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .fake_bot_api import FakeBotApi
from .harness import RunningBot, button_labels, png_parameters, telegram_config


async def test_buttons_and_waiting_jobs_survive_a_restart(
    fake_api: FakeBotApi,
    tiny_model_dir: Path,
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    fake = fake_api
    config_path = write_config(tmp_path, telegram_config(fake, tiny_model_dir))
    bot = await RunningBot.start(fake, config_path)
    try:
        user = bot.new_user("Rita")
        chat = fake.private_chat(user)
        mark = fake.mark()
        await fake.send_text(user, chat, "/imagine a red fox --steps 2 --seed 5")
        old_photo = (await bot.result_photo(chat["id"], mark)).result

        # A job still waiting when the bot stops (the queue is not serving).
        await bot.services.scheduler.stop()
        mark = fake.mark()
        await fake.send_text(user, chat, "/imagine a lighthouse at dusk --steps 20")
        status = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
    finally:
        await bot.stop()

    restarted = fake.mark()
    bot = await RunningBot.start(fake, config_path)
    try:
        # The waiting job resumes and lands in the chat; its status message goes.
        resumed = await bot.result_photo(chat["id"], restarted)
        assert "a lighthouse at dusk" in resumed.result["caption"]
        photos = fake.calls_of("sendPhoto", since=0, chat_id=chat["id"])
        assert ["lighthouse" in p.result["caption"] for p in photos] == [False, True]
        await fake.next_call(
            "deleteMessage",
            since=restarted,
            chat_id=chat["id"],
            where=lambda c: c.params["message_id"] == status.result["message_id"],
        )

        # Buttons under a picture from before the restart still work.
        mark = await bot.click_button(user, old_photo, "🔁 Re-roll")
        reroll = await bot.result_photo(chat["id"], mark)
        assert "a red fox" in reroll.result["caption"]
        assert "Seed: 5" not in reroll.result["caption"]  # a re-roll takes a new seed
        assert reroll.result["reply_to_message"]["message_id"] == old_photo["message_id"]
        assert "📄 PNG" in button_labels(reroll.result)

        mark = await bot.click_button(user, old_photo, "📄 PNG")
        document = await fake.next_call("sendDocument", since=mark, chat_id=chat["id"])
        assert "Seed: 5" in png_parameters(document.files["document"].data)

        mark = await bot.click_button(user, old_photo, "🗑 Delete")
        await fake.next_call("deleteMessage", since=mark, chat_id=chat["id"])
        shown = [m["message_id"] for m in fake.chat_messages(chat["id"])]
        assert old_photo["message_id"] not in shown
    finally:
        await bot.stop()
