"""One running Atelier per test module, talking to a fake Bot API on 127.0.0.1.

Tests act as Telegram users through `FakeBotApi` and watch what the real
python-telegram-bot sends back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from .fake_bot_api import FakeBotApi
from .harness import RunningBot, telegram_config


@pytest.fixture(scope="module")
async def fake_api() -> AsyncIterator[FakeBotApi]:
    fake = FakeBotApi()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture(scope="module")
async def running_bot(
    fake_api: FakeBotApi,
    tiny_model_dir: Path,
    write_config: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningBot]:
    folder = tmp_path_factory.mktemp("telegram")
    config_path = write_config(folder, telegram_config(fake_api, tiny_model_dir))
    bot = await RunningBot.start(fake_api, config_path)
    yield bot
    await bot.stop()
