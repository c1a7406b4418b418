"""Starting without a network, and with a token Telegram rejects."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.adapters.telegram import TelegramAdapter
from bot.config import load_config
from bot.services import Services

from .fake_bot_api import FakeBotApi
from .harness import telegram_config


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_bot_started_before_its_network_comes_up_when_it_does(
    tmp_path: Path,
    tiny_model_dir: Path,
    write_config: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeBotApi(port=free_port())  # nothing listens there yet
    config = load_config(write_config(tmp_path, telegram_config(fake, tiny_model_dir)))
    services = await Services.start(config)
    adapter = TelegramAdapter(services, poll_timeout=1, connect_backoff=(0.2, 0.4))
    caplog.set_level(logging.WARNING, logger="atelier.telegram")
    starting = asyncio.create_task(adapter.start())
    try:
        async with asyncio.timeout(30):
            while len([r for r in caplog.records if "unreachable" in r.message]) < 3:
                assert not starting.done(), starting.exception()
                await asyncio.sleep(0.05)
        tries = [r for r in caplog.records if "unreachable" in r.message]
        # One line per attempt, no traceback, and the waits grow to their cap.
        assert all(r.exc_info is None and "\n" not in r.getMessage() for r in tries)
        assert "trying again in 0.4 s" in tries[-1].getMessage()

        await fake.start()  # the network is up
        async with asyncio.timeout(30):
            await starting
        user = {"id": 31, "is_bot": False, "first_name": "Nia"}
        chat = fake.private_chat(user)
        mark = fake.mark()
        await fake.send_text(user, chat, "/imagine a late fox --steps 2")
        await fake.next_call("sendPhoto", since=mark, chat_id=chat["id"], timeout=60)
    finally:
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await adapter.stop()
        await services.close()
        await fake.close()


async def test_a_rejected_token_stops_the_bot_with_one_line_and_no_token(
    tmp_path: Path, tiny_model_dir: Path, write_config: Callable[..., Path]
) -> None:
    fake = FakeBotApi()
    await fake.start()
    try:
        wrong = "987654321:" + "W" * 35  # the shape of a real token: redacted by shape too
        section = telegram_config(fake, tiny_model_dir).replace(fake.token, wrong)
        config_path = write_config(tmp_path, section)
        run = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--config",
            str(config_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "TELEGRAM_TOKEN": "", "OMP_NUM_THREADS": "1"},
        )
        output, _ = await asyncio.wait_for(run.communicate(), 180)
    finally:
        await fake.close()
    text = output.decode(errors="replace")
    assert run.returncode == 2, text
    assert text.splitlines()[-1] == "error: Telegram rejected the token (401)"
    assert "Traceback" not in text
    assert wrong not in text and wrong.split(":")[1] not in text
