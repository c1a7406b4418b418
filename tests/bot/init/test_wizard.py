"""`python -m bot init` against the fake Telegram and Discord servers, and the configs it
writes: they load, and the bot starts from them (as `python -m bot run` for Telegram,
through the real adapter for Discord).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import signal
import stat
import sys
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import torch

from bot.cli import main
from bot.config import load_config
from bot.init.checks import DISCORD_PERMISSIONS
from bot.init.wizard import Asker, Wizard, add_init_arguments

from ..adapters.discord.fake_discord import FakeDiscord
from ..adapters.discord.harness import RunningBot as RunningDiscordBot
from ..adapters.discord.harness import Users
from ..adapters.telegram.fake_bot_api import FakeBotApi

REPO = Path(__file__).resolve().parents[3]
# The harmless library messages `bot.logs` drops, as they start.
NOISE = ("There are modules in", "requires torchvision", "voice will NOT be supported")


@pytest.fixture
def no_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEGRAM_TOKEN", raising=False)
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeBotApi]:
    fake = FakeBotApi()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    async with fake.running():
        yield fake


async def init(*argv: str) -> int:
    """`python -m bot init ARGV`, in a thread: the fakes serve on this test's loop."""
    return await asyncio.to_thread(main, ["init", *argv])


async def test_telegram_init_checks_the_token_and_its_config_starts_the_bot(
    telegram: FakeBotApi,
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_tokens: None,
    restore_logging: None,
) -> None:
    # The admin keeps models next to the config, as the Docker and systemd docs do.
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny").symlink_to(tiny_model_dir)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEGRAM_TOKEN", telegram.token)
    code = await init(
        *("--telegram", "--telegram-base-url", telegram.base_url, "--model", "models/tiny"),
        *("--telegram-admin", "900", "--yes"),
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "@AtelierTestBot" in out
    assert telegram.calls_of("getMe"), "the token was not checked"
    written = (tmp_path / "config.toml").read_text()
    assert telegram.token not in out + err + written
    assert "# " in written  # commented for the admin who opens it

    config = load_config(tmp_path / "config.toml")
    assert config.telegram.enabled and not config.discord.enabled
    assert (config.telegram.base_url, config.telegram.base_file_url) == (
        telegram.base_url,
        telegram.base_file_url,
    )
    assert config.engine.default_model == "tiny"
    assert 'source = "./models/tiny"' in written  # relative: the folder can move
    assert config.models["tiny"].source == str(tmp_path / "models" / "tiny")
    assert config.admins.telegram == ["900"]
    assert config.data_dir == tmp_path / "data"

    # Started as an admin would, with JSON logs, on a machine whose NVIDIA driver the
    # installed (CPU-only) PyTorch cannot use.
    fake_driver = tmp_path / "bin"
    fake_driver.mkdir()
    (fake_driver / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
    (fake_driver / "nvidia-smi").chmod(0o755)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PATH": f"{fake_driver}{os.pathsep}{os.environ['PATH']}",
    }
    # The test session quiets these libraries; an admin's shell does not.
    for variable in ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY"):
        env.pop(variable, None)
    bot = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot", "run", "--log-format", "json"),
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    lines: list[str] = []
    try:
        await asyncio.wait_for(read_until(bot, lines, "Atelier is running"), 180)
        user = {"id": 900, "is_bot": False, "first_name": "Ann"}
        mark = telegram.mark()
        await telegram.send_text(
            user, telegram.private_chat(user), "/imagine a red fox --steps 2 --size 64x64"
        )
        await telegram.next_call("sendPhoto", since=mark, timeout=120)
        await asyncio.wait_for(read_until(bot, lines, "paint on the CPU"), 60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            bot.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(bot.communicate(), 60)
    lines += rest.decode().splitlines()
    assert bot.returncode == 0, "\n".join(lines)

    records = [json.loads(line) for line in lines if line.strip()]  # every line is JSON
    messages = [r["message"] for r in records]
    assert any("Atelier stopped" in m for m in messages), "\n".join(messages)
    gpu = [r for r in records if "paint on the CPU" in r["message"]]
    # Why the GPU goes unused depends on the torch installed here.
    why = "CPU-only build" if torch.version.cuda is None else "cannot use the GPU"
    assert gpu and gpu[0]["level"] == "WARNING" and why in gpu[0]["message"]
    assert not [m for m in messages if any(noise in m for noise in NOISE)]
    assert telegram.token not in "\n".join(lines)


async def read_until(process: asyncio.subprocess.Process, lines: list[str], text: str) -> None:
    """Read the process's stderr into `lines` until one contains `text`."""
    assert process.stderr is not None
    while not any(text in line for line in lines):
        raw = await process.stderr.readline()
        if not raw:
            raise AssertionError(f"the bot ended before {text!r}:\n" + "\n".join(lines))
        lines.append(raw.decode().rstrip("\n"))


async def test_discord_init_prints_the_invite_and_its_config_starts_the_adapter(
    discord: FakeDiscord,
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_tokens: None,
    restore_logging: None,
) -> None:
    users = Users(
        alice=discord.add_user("alice"),  # the application's owner (the fake's first user)
        bob=discord.add_user("bob"),
        root=discord.add_user("root"),
        boss=discord.add_user("boss", administrator=True),
    )
    monkeypatch.setenv("DISCORD_TOKEN", discord.token)
    path = tmp_path / "config.toml"
    code = await init(
        *("--config", str(path), "--discord", "--model", str(tiny_model_dir)),
        *("--write-tokens", "--yes"),
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Atelier" in out and str(discord.application_id) in out
    assert ("GET", "/users/@me") in discord.requests
    assert ("GET", "/oauth2/applications/@me") in discord.requests
    assert discord.token not in out + err

    invite = next(word for word in out.split() if word.startswith("https://"))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(invite).query)
    assert query["client_id"] == [str(discord.application_id)]
    assert set(query["scope"][0].split()) == {"bot", "applications.commands"}
    permissions = int(query["permissions"][0])
    for bit in (1 << 10, 1 << 11, 1 << 14, 1 << 15, 1 << 16, 1 << 31):
        # view channel, send messages, embed links, attach files, read history, commands
        assert permissions & bit, f"permission bit {bit} missing from {permissions}"
    assert permissions == 277025508352, sorted(DISCORD_PERMISSIONS)

    # --write-tokens: the token is in the file, and only its owner can read it.
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    monkeypatch.delenv("DISCORD_TOKEN")
    config = load_config(path)
    assert config.discord.enabled and config.discord.token == discord.token
    assert config.admins.discord == [str(users.alice.id)]

    bot = RunningDiscordBot(discord, path, users)
    await bot.start()
    try:
        assert {c["name"] for c in discord.commands[None]} >= {"imagine", "help"}
    finally:
        await bot.stop()


@pytest.mark.parametrize("platform", ["telegram", "discord"])
async def test_a_refused_token_is_one_line_and_writes_nothing(
    platform: str,
    telegram: FakeBotApi,
    discord: FakeDiscord,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_tokens: None,
    restore_logging: None,
) -> None:
    wrong = "999:WRONG-token-kept-secret"
    monkeypatch.setenv(f"{platform.upper()}_TOKEN", wrong)
    path = tmp_path / "config.toml"
    extra = ["--telegram-base-url", telegram.base_url] if platform == "telegram" else []
    code = await init("--config", str(path), f"--{platform}", *extra, "--yes")
    out, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and "refused the token" in err, err
    assert wrong not in out + err
    assert not path.exists()


async def test_no_answer_from_telegram_is_exit_1(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_tokens: None,
    restore_logging: None,
) -> None:
    monkeypatch.setenv("TELEGRAM_TOKEN", "123:ABC")
    closed = "http://127.0.0.1:9/bot"  # the discard port: nothing listens there
    code = await init("--config", str(tmp_path / "c.toml"), "--telegram-base-url", closed, "-y")
    _, err = capsys.readouterr()
    assert code == 1
    assert "no answer from Telegram" in err and "123:ABC" not in err
    assert not (tmp_path / "c.toml").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "no platform: pass --telegram and/or --discord"),
        (["--telegram"], "--telegram needs its token in $TELEGRAM_TOKEN"),
        (["--telegram", "--no-check", "--telegram-admin", "@me"], "a user id is a number"),
        (["--discord", "--no-check", "--model", "./nowhere"], "--model './nowhere': not one of"),
    ],
)
def test_non_interactive_mistakes_are_refused_with_one_line(
    argv: list[str],
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_tokens: None,
    restore_logging: None,
) -> None:
    path = tmp_path / "config.toml"
    assert main(["init", "--config", str(path), *argv, "--yes"]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and expected in err, err
    assert not path.exists()


def test_an_existing_config_is_kept_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_tokens: None, restore_logging: None
) -> None:
    path = tmp_path / "config.toml"
    path.write_text("# mine\n")
    argv = ["init", "--config", str(path), "--telegram", "--no-check", "--yes"]
    assert main(argv) == 2
    assert "pass --force" in capsys.readouterr().err
    assert path.read_text() == "# mine\n"
    assert main([*argv, "--force"]) == 0
    config = load_config(path)
    assert config.telegram.enabled and config.engine.default_model == "sd15"


async def test_the_dialogue_asks_checks_again_and_keeps_the_typed_token_out_of_the_file(
    telegram: FakeBotApi,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_tokens: None,
    restore_logging: None,
) -> None:
    """A new admin at a terminal: Telegram only, a mistyped token first, SDXL."""
    answers = [
        "y",  # Run on Telegram?
        "n",  # Run on Discord?
        "123:typo",  # the token, refused: asked again
        telegram.token,
        "@me",  # not an id: asked again
        "4242",
        "9",  # not on the menu: asked again
        "2",  # SDXL
        "",  # save the token in the file? default no
    ]
    stdout = io.StringIO()
    asker = Asker(io.StringIO("\n".join(answers) + "\n"), stdout, interactive=True)
    parser = argparse.ArgumentParser()
    add_init_arguments(parser)
    args = parser.parse_args(["--telegram-base-url", telegram.base_url])
    path = tmp_path / "config.toml"
    await asyncio.to_thread(Wizard(args, asker, path, env={}, cwd=tmp_path).run)

    said = stdout.getvalue()
    assert "Telegram refused the token" in said
    assert "a user id is a number" in said
    assert "@AtelierTestBot" in said
    assert "Before starting, set $TELEGRAM_TOKEN" in said
    assert "stabilityai/stable-diffusion-xl-base-1.0 (about 14 GB)" in said
    assert telegram.token not in said and "123:typo" not in said
    text = path.read_text()
    assert telegram.token not in text
    config = load_config(path)
    assert config.admins.telegram == ["4242"]
    assert config.engine.default_model == "sdxl"
    sdxl = config.models["sdxl"]
    assert sdxl.source == "stabilityai/stable-diffusion-xl-base-1.0"
    assert (sdxl.width, sdxl.height) == (1024, 1024)
