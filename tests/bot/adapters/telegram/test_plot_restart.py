"""/plot across a restart, with a daily quota that counts cells. Its own module: the
bot here must be the only one polling the fake."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from .fake_bot_api import FakeBotApi
from .harness import RunningBot, telegram_config
from .test_plot import CELL, grid_png, photo_of


async def test_the_quota_counts_cells_and_the_plot_survives_a_restart(
    fake_api: FakeBotApi,
    tiny_model_dir: Path,
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    fake = fake_api
    extra = telegram_config(fake, tiny_model_dir).replace(
        "max_queued_per_user = 10", "max_queued_per_user = 10\ndaily_quota = 4"
    )
    config_path = write_config(tmp_path, extra)
    bot = await RunningBot.start(fake, config_path)
    user = bot.new_user("Quinn")
    chat = fake.private_chat(user)
    try:
        # Five cells are five pictures: over a quota of four, refused, nothing queued.
        mark = fake.mark()
        await fake.send_text(user, chat, "/plot a fox --steps 1 --x seed=1-5")
        reply = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
        assert "4 of your 4 daily pictures left" in reply.result["text"]
        assert await bot.jobs_of(user) == []

        # Four cells fit; the bot stops once the first is painted (different steps:
        # each cell is its own batch).
        start = fake.mark()
        await fake.send_text(user, chat, "/plot a fox --seed 2 --x steps=1,2,3,4")
        deadline = asyncio.get_running_loop().time() + 120
        while True:
            cells = [j for j in await bot.jobs_of(user) if j.request.kind == "imagine"]
            if any(cell.status.painted for cell in cells):
                break
            assert asyncio.get_running_loop().time() < deadline, cells
            await asyncio.sleep(0.02)
        await bot.services.scheduler.stop()
        cells = [j for j in await bot.jobs_of(user) if j.request.kind == "imagine"]
        assert not all(cell.status.finished for cell in cells)  # mid-plot
    finally:
        await bot.stop()
    assert fake.calls_of("sendPhoto", since=start, chat_id=chat["id"]) == []

    bot = await RunningBot.start(fake, config_path)
    try:
        photo = (await photo_of(bot, chat["id"], start)).result
        assert "X: Steps 1, 2, 3, 4" in photo["caption"]
        grid, _ = await grid_png(bot, user, photo)
        assert grid.width == 4 * CELL
        await asyncio.sleep(1.0)
        assert len(fake.calls_of("sendPhoto", since=start, chat_id=chat["id"])) == 1
        # The quota is used up by the four cells.
        mark = fake.mark()
        await fake.send_text(user, chat, "/imagine one more --steps 1")
        reply = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
        assert "made your 4 pictures for today" in reply.result["text"]
    finally:
        await bot.stop()
