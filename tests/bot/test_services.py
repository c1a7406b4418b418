"""Services (store + engine process + scheduler) and the app runner, for real.

The app test runs the whole bot, Telegram adapter included, against the fake Bot API
on 127.0.0.1, and stops it with SIGTERM as a service manager would.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot import app
from bot.config import ConfigError, load_config
from bot.jobs.events import Finished
from bot.records import JobStatus
from bot.services import Services
from bot.store import Store, StoreError
from tests.bot.adapters.telegram.fake_bot_api import FakeBotApi
from tests.bot.jobs.scheduler_harness import ANN, Recorder, request


def engine_processes() -> list[int]:
    """Pids of this process's children running the engine (`python -m engine`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        if parent == os.getpid() and command[1:3] == [b"-m", b"engine"]:
            found.append(int(entry.name))
    return found


async def test_services_start_work_and_close(
    tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    config = load_config(
        write_config(
            tmp_path,
            """
[safety]
blocked_words = ["forbidden"]

[admins]
telegram = ["42"]
discord = [7]
""",
        )
    )
    services = await Services.start(config)
    try:
        assert services.store.path == config.data_dir / "atelier.sqlite3"
        health = await services.engine.health()
        assert health["alive"] is True
        assert services.scheduler.current_model == "tiny"
        assert services.prompt_filter.check("a forbidden fox") is not None
        assert services.prompt_filter.check("a red fox") is None
        assert services.presets.step("gender") is not None
        assert services.is_admin("telegram", "42")
        assert services.is_admin("discord", "7")
        assert not services.is_admin("telegram", "7")
        assert not services.is_admin("discord", "42")
        assert not services.is_admin("cli", "42")

        recorder = Recorder()
        services.scheduler.add_listener("telegram", recorder)
        job = await services.scheduler.submit(ANN, request(), {"chat_id": 1})
        await recorder.until_ended(job.id)
        assert isinstance(recorder.ending(job.id), Finished)
    finally:
        await services.close()
    assert engine_processes() == []

    # Everything was saved where the config says, and the database was closed cleanly.
    store = await Store.open(config.data_dir / "atelier.sqlite3")
    try:
        saved = await store.get_job(job.id)
        assert saved is not None and saved.status is JobStatus.DELIVERING
        assert (config.data_dir / saved.images[0].path).is_file()
    finally:
        await store.close()


async def test_a_broken_presets_file_stops_start_before_the_engine_spawns(
    tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    (tmp_path / "presets.toml").write_text("this is [not toml")
    config = load_config(write_config(tmp_path, '[avatar]\npresets_file = "presets.toml"\n'))
    with pytest.raises(ConfigError, match="not valid TOML"):
        await Services.start(config)
    assert engine_processes() == []


async def test_an_unusable_data_folder_is_one_clear_error(
    tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    config = load_config(write_config(tmp_path, '[telegram]\nenabled = true\ntoken = "x"\n'))
    config.data_dir.parent.mkdir(parents=True, exist_ok=True)
    config.data_dir.write_text("a file where the data folder should be")
    with pytest.raises(StoreError, match="cannot open the database"):
        await Services.start(config)
    # Run by `python -m bot run`: one line for the operator, not a traceback.
    with pytest.raises(ConfigError, match="cannot open the database"):
        await app.run(config)
    assert engine_processes() == []


async def test_run_needs_an_enabled_adapter(
    tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    config = load_config(write_config(tmp_path))
    with pytest.raises(ConfigError, match="no adapter enabled"):
        await app.run(config)


async def test_run_names_an_adapter_that_is_not_installed(
    tmp_path: Path, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(write_config(tmp_path, '[discord]\nenabled = true\ntoken = "x"\n'))
    # What Python does when a package is missing from the installation.
    monkeypatch.setitem(sys.modules, "bot.adapters.discord", None)
    with pytest.raises(ConfigError, match="the discord adapter is not available"):
        await app.run(config)
    assert engine_processes() == []


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotApi]:
    fake = FakeBotApi()
    await fake.start()
    yield fake
    await fake.close()


async def test_run_serves_telegram_until_sigterm(
    tmp_path: Path,
    write_config: Callable[..., Path],
    fake_api: FakeBotApi,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = load_config(
        write_config(
            tmp_path,
            f"""
[telegram]
enabled = true
token = "{fake_api.token}"
base_url = "{fake_api.base_url}"
base_file_url = "{fake_api.base_file_url}"

[limits]
max_steps = 200
""",
        )
    )
    caplog.set_level(logging.INFO, logger="atelier.app")
    running = asyncio.create_task(app.run(config))
    try:
        async with asyncio.timeout(90):
            while not any("Atelier is running" in r.message for r in caplog.records):
                assert not running.done(), running.exception()
                await asyncio.sleep(0.05)
        assert fake_api.calls_of("setMyCommands")

        user = {"id": 555, "is_bot": False, "first_name": "Ann"}
        chat = fake_api.private_chat(user)
        since = fake_api.mark()
        await fake_api.send_text(user, chat, "/imagine a red fox --steps 2")
        photo = await fake_api.next_call("sendPhoto", since=since, chat_id=555, timeout=90)
        assert photo.files

        # SIGTERM while a picture paints: it is finished and delivered before the exit.
        since = fake_api.mark()
        await fake_api.send_text(user, chat, "/imagine a late fox --steps 120")
        await fake_api.next_call(
            "editMessageText", since=since, chat_id=555, where=lambda c: "🎨" in c.params["text"]
        )
        os.kill(os.getpid(), signal.SIGTERM)
        async with asyncio.timeout(60):
            await running
        (late,) = fake_api.calls_of("sendPhoto", since=since, chat_id=555)
        assert "a late fox" in late.params["caption"]
    finally:
        if not running.done():
            running.cancel()
    assert engine_processes() == []
    assert fake_api.token not in caplog.text
