"""`kill -9` of the whole bot, with jobs at every stage, then a restart: every job is
delivered exactly once, and a command that was being handled is not lost.

The bot runs as `python -m bot run` in its own process against the fake Bot API in
this one. At the kill, five users' jobs stand at five stages:
- Ann's picture is painted, its upload refused with a 429 (flood control);
- Bob's is painted, its upload failing with 5xx answers: painted, not delivered;
- Eve's upload reached Telegram, whose answer never came back (it may have arrived);
- Cid's is painting;
- Dan's is waiting behind it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .fake_bot_api import ApiCall, FakeBotApi, Fault
from .harness import png_bytes, telegram_config


class BotProcess:
    """`python -m bot run --config PATH`, its output kept in a file."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        environment.pop("TELEGRAM_TOKEN", None)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def replies_to(message: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    def check(params: dict[str, Any]) -> bool:
        return params.get("reply_parameters", {}).get("message_id") == message["message_id"]

    return check


def photos(fake: FakeBotApi, message: dict[str, Any]) -> list[ApiCall]:
    """Pictures that arrived in the chat as answers to `message`."""
    wanted = replies_to(message)
    return [call for call in fake.calls_of("sendPhoto") if wanted(call.params)]


async def until(predicate: Callable[[], object], what: str, timeout: float = 120.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_kill_9_at_every_stage_then_every_job_is_delivered_exactly_once(
    tmp_path: Path, tiny_model_dir: Path, write_config: Callable[..., Path]
) -> None:
    fake = FakeBotApi()
    await fake.start()
    config_path = write_config(tmp_path, telegram_config(fake, tiny_model_dir))
    # One picture at a time, and long enough jobs to be caught painting.
    text = config_path.read_text().replace("[limits]", "[limits]\nmax_steps = 500")
    text = text.replace('device = "cpu"', 'device = "cpu"\nmax_batch = 1')
    config_path.write_text(text)
    bot = BotProcess(config_path, tmp_path / "bot.log")
    users = {
        name: {"id": 700 + n, "is_bot": False, "first_name": name}
        for n, name in enumerate(("Ann", "Bob", "Eve", "Cid", "Dan"))
    }
    chats = {name: fake.private_chat(user) for name, user in users.items()}
    try:
        bot.start()
        await until(lambda: fake.calls_of("getUpdates") or fake.calls_of("setMyCommands"), "start")
        asked: dict[str, dict[str, Any]] = {}
        for name, steps in (("Ann", 2), ("Bob", 2), ("Eve", 2), ("Cid", 150), ("Dan", 2)):
            asked[name] = await fake.send_text(
                users[name], chats[name], f"/imagine a {name} fox --steps {steps} --seed 1"
            )
        flood = fake.add_fault(
            Fault("sendPhoto", replies_to(asked["Ann"]), refuse=429, retry_after=2)
        )
        broken = fake.add_fault(Fault("sendPhoto", replies_to(asked["Bob"]), refuse=500))
        fake.add_fault(Fault("sendPhoto", replies_to(asked["Eve"]), answer_after=3600))

        def cid_is_painting() -> bool:
            return any(
                "Painting" in call.params.get("text", "")
                for call in fake.calls_of("editMessageText", chat_id=chats["Cid"]["id"])
            )

        await until(
            lambda: flood.hits and broken.hits and photos(fake, asked["Eve"]) and cid_is_painting(),
            "every stage",
        )
        assert not photos(fake, asked["Dan"])
        bot.kill()

        # Telegram is well again; Eve's picture is there already.
        fake.faults.clear()
        bot.start()
        for name in ("Ann", "Bob", "Cid", "Dan"):
            await until(lambda n=name: photos(fake, asked[n]), f"{name}'s picture", 180)
        note = await fake.next_call(
            "editMessageText",
            since=0,
            chat_id=chats["Eve"]["id"],
            where=lambda call: "did not confirm" in call.params["text"],
            timeout=60,
        )
        assert "📄 PNG" in str(note.params["reply_markup"])
        await asyncio.sleep(1.0)  # room for a duplicate to show up, if there were one
        counts = {name: len(photos(fake, asked[name])) for name in asked}
        assert counts == dict.fromkeys(asked, 1), counts
        assert bot.stop() == 0
    finally:
        if bot.process is not None and bot.process.poll() is None:
            bot.kill()
        await fake.close()
        print(bot.output[-6000:])  # shown when the test fails
    assert fake.token not in bot.output


async def test_a_command_being_handled_at_a_kill_is_handled_after_the_restart(
    tmp_path: Path, tiny_model_dir: Path, write_config: Callable[..., Path]
) -> None:
    """Fetched from Telegram but not yet acted on: the `/vary` photo was still
    downloading. Telegram must not have been told the update was handled."""
    fake = FakeBotApi()
    await fake.start()
    config_path = write_config(tmp_path, telegram_config(fake, tiny_model_dir))
    bot = BotProcess(config_path, tmp_path / "bot.log")
    user = {"id": 790, "is_bot": False, "first_name": "Fia"}
    chat = fake.private_chat(user)
    try:
        bot.start()
        await until(lambda: fake.calls_of("setMyCommands"), "start")
        stuck = fake.add_fault(Fault("getFile", answer_after=3600))
        asked = await fake.send_photo(
            user, chat, png_bytes(64, 64), caption="/vary a green fox --steps 2 --seed 3"
        )
        await until(lambda: stuck.hits, "the download under way")
        await asyncio.sleep(1.0)  # the poller asks Telegram again meanwhile
        bot.kill()

        fake.faults.clear()
        bot.start()
        await until(lambda: photos(fake, asked), "the varied picture", 180)
        await asyncio.sleep(1.0)  # room for a duplicate to show up, if there were one
        assert len(photos(fake, asked)) == 1
        assert bot.stop() == 0
    finally:
        if bot.process is not None and bot.process.poll() is None:
            bot.kill()
        await fake.close()
        print(bot.output[-6000:])  # shown when the test fails
