"""An SDXL model behind /model, end to end through python-telegram-bot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from .fake_bot_api import FakeBotApi
from .harness import ADMIN_ID, RunningBot, image_of, png_parameters, telegram_config


@pytest.fixture(scope="module")
async def running_bot(
    fake_api: FakeBotApi,
    tiny_model_dir: Path,
    tiny_sdxl_dir: Path,
    write_config: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningBot]:
    folder = tmp_path_factory.mktemp("telegram-families")
    extra = (
        telegram_config(fake_api, tiny_model_dir)
        + f"""
[models.xl]
source = "{tiny_sdxl_dir}"
"""
    )
    bot = await RunningBot.start(fake_api, write_config(folder, extra))
    yield bot
    await bot.stop()


async def test_an_admin_switches_to_sdxl_and_pictures_come_at_its_native_size(
    running_bot: RunningBot,
) -> None:
    fake = running_bot.fake
    assert "loras" in [command["command"] for command in fake.commands]
    admin = running_bot.new_user("Admin", user_id=ADMIN_ID)
    chat = fake.private_chat(admin)
    mark = fake.mark()
    await fake.send_text(admin, chat, "/model xl")
    reply = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"], timeout=60)
    assert "Switched to xl" in reply.result["text"]

    mark = fake.mark()
    await fake.send_text(admin, chat, "/imagine a hat --steps 2 --seed 3")
    photo = await running_bot.result_photo(chat["id"], mark)
    assert image_of(photo.files["photo"].data).size == (64, 64)
    mark = await running_bot.click_button(admin, photo.result, "📄 PNG")
    document = await fake.next_call("sendDocument", since=mark, chat_id=chat["id"])
    parameters = png_parameters(document.files["document"].data)
    assert "Sampler: DPM++ 2M Karras" in parameters and "Model: xl" in parameters
