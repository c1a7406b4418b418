"""The config `init` writes loads back as what was chosen, for every model on the menu."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bot.config import load_config
from bot.init.config_file import PlatformSetup, Setup, TelegramSetup, render, write
from bot.init.models import KNOWN_MODELS


@pytest.mark.parametrize("name", list(KNOWN_MODELS))
def test_each_known_model_is_written_with_its_defaults(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TELEGRAM_TOKEN", raising=False)
    path = tmp_path / "config.toml"
    write(path, render(Setup(model=KNOWN_MODELS[name], telegram=TelegramSetup())), private=False)
    config = load_config(path)
    chosen, loaded = KNOWN_MODELS[name], config.models[name]
    assert config.engine.default_model == name
    assert loaded.source == chosen.source
    assert (loaded.width, loaded.height) == (chosen.width, chosen.height)
    assert (loaded.default_steps, loaded.default_cfg) == (chosen.default_steps, chosen.default_cfg)
    assert config.telegram.enabled and not config.discord.enabled


def test_tokens_only_when_asked_and_odd_strings_survive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    odd = 'data "main" \\ ünïcode'
    setup = Setup(
        model=KNOWN_MODELS["sd15"],
        discord=PlatformSetup(token="tok.en", admins=["42"]),
        storage=odd,
    )
    assert "tok.en" not in render(setup)
    path = tmp_path / "config.toml"
    write(path, render(dataclasses.replace(setup, write_tokens=True)), private=True)
    config = load_config(path)
    assert config.discord.token == "tok.en"
    assert config.storage.path == odd
    assert config.admins.discord == ["42"]
    assert (path.stat().st_mode & 0o777) == 0o600
