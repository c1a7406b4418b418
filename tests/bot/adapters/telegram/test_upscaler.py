"""⬆️ Upscale through python-telegram-bot with an [upscale] model configured."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.types import UpscaleSettings
from engine.upscaler import load_upscaler
from tests.tiny_upscaler import save_tiny_upscaler

from .fake_bot_api import FakeBotApi
from .harness import RunningBot, image_of, png_parameters, telegram_config


@pytest.fixture(scope="module")
def upscaler_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_upscaler(tmp_path_factory.mktemp("upscalers") / "4x-Tiny.pth")


@pytest.fixture(scope="module")
async def running_bot(
    fake_api: FakeBotApi,
    tiny_model_dir: Path,
    upscaler_file: Path,
    write_config: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningBot]:
    folder = tmp_path_factory.mktemp("telegram-upscale")
    extra = telegram_config(fake_api, tiny_model_dir) + (
        f'\n[upscale]\nmodel = "{upscaler_file}"\ndetail_strength = 0\n'
    )
    bot = await RunningBot.start(fake_api, write_config(folder, extra))
    yield bot
    await bot.stop()


async def png_of(running_bot: RunningBot, user: dict, chat: dict, photo: dict) -> bytes:
    mark = await running_bot.click_button(user, photo, "📄 PNG")
    document = await running_bot.fake.next_call("sendDocument", since=mark, chat_id=chat["id"])
    return document.files["document"].data


async def test_upscale_delivers_the_models_picture_at_twice_the_side(
    running_bot: RunningBot, upscaler_file: Path
) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_text(user, chat, "/imagine a lighthouse --steps 2 --seed 4")
    original = (await running_bot.result_photo(chat["id"], mark)).result
    source = await png_of(running_bot, user, chat, original)

    mark = await running_bot.click_button(user, original, "⬆️ Upscale")
    upscaled = await running_bot.result_photo(chat["id"], mark)
    assert image_of(upscaled.files["photo"].data).size == (128, 128)
    result = await png_of(running_bot, user, chat, upscaled.result)
    parameters = png_parameters(result)
    assert "Seed: 4, Size: 128x128, Model: tiny" in parameters
    assert parameters.endswith("Hires upscale: 2, Hires upscaler: 4x-Tiny")
    assert "Denoising strength" not in parameters  # detail_strength = 0: no detail pass

    # Exactly what the model makes of the original, resized from 4x to 2x.
    upscaler = load_upscaler(UpscaleSettings(model=str(upscaler_file)), "cpu", torch.float32)
    with Image.open(io.BytesIO(source)) as picture:
        expected = np.asarray(upscaler.upscale(picture.convert("RGB"), (128, 128)))
    assert np.array_equal(np.asarray(image_of(result).convert("RGB")), expected)
