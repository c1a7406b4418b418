"""The config.toml `init` writes: the keys a new admin meets first, each with a comment
(taken from config.example.toml, which documents every other key).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from bot.config import TelegramConfig
from bot.init.models import ModelChoice

COMMENT_COLUMN = 25
_TOKEN_HINT = "keep this file private; a set $..._TOKEN wins"


@dataclass(frozen=True)
class PlatformSetup:
    token: str = field(default="", repr=False)  # written only when `write_tokens`
    admins: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TelegramSetup(PlatformSetup):
    base_url: str = TelegramConfig.base_url
    base_file_url: str = TelegramConfig.base_file_url


@dataclass(frozen=True)
class Setup:
    """Everything the config is written from."""

    model: ModelChoice
    telegram: TelegramSetup | None = None  # None: not enabled
    discord: PlatformSetup | None = None
    storage: str = "data"
    write_tokens: bool = False


def render(setup: Setup, *, today: date | None = None) -> str:
    model = setup.model
    telegram = setup.telegram or TelegramSetup()
    discord = setup.discord or PlatformSetup()
    lines = [
        f"# Atelier configuration, written by `python -m bot init` on {today or date.today()}.",
        "# Edit freely: config.example.toml documents every key. Relative paths are read",
        "# from this file's folder. Start the bot with `scripts/run` or `python -m bot run`.",
        "",
        "[engine]",
        _key("default_model", model.name, "the model loaded at start; admins switch: /model"),
        _key("device", "auto", "auto | cpu | cuda | cuda:N   (auto: the first GPU, else CPU)"),
        _key("dtype", "auto", "auto | float16 | bfloat16 | float32   (auto: fp16 on CUDA)"),
        "",
        "# One [models.NAME] table per model; NAME is what users type (`/model NAME`) and",
        "# what the PNG metadata says (`Model: NAME`).",
        f"[models.{model.name}]",
        _key("source", model.source, "hub id, local folder, or one .safetensors file"),
    ]
    for key in ("width", "height", "default_steps", "default_cfg", "sampler"):
        value = getattr(model, key)
        if value is not None:
            lines.append(_key(key, value))
    lines += [
        "",
        "[limits]",
        _key("jobs_per_minute", 3, "per user (admins are exempt)"),
        _key("max_queued_per_user", 3, "queued + running jobs per user (admins are exempt)"),
        _key("max_queue", 200, 'whole queue; beyond it: "busy, try later"'),
        _key("daily_quota", 0, "pictures per user per day; 0 = no quota"),
        "",
        "[safety]",
        _key("blocked_words", [], "matched after normalisation (case, accents, leetspeak)"),
        "",
        "[storage]",
        _key("path", setup.storage, "SQLite database and generated images"),
        "",
        "# User ids (numbers): send /whoami to the bot to see yours.",
        "[admins]",
        _key("discord", discord.admins),
        _key("telegram", telegram.admins),
        "",
        "[telegram]",
        _key("enabled", setup.telegram is not None, _enable_hint("telegram", setup.telegram)),
    ]
    if setup.write_tokens and telegram.token:
        lines.append(_key("token", telegram.token, _TOKEN_HINT))
    lines += [
        _key("base_url", telegram.base_url, "or a self-hosted Bot API server"),
        _key("base_file_url", telegram.base_file_url),
        "",
        "[discord]",
        _key("enabled", setup.discord is not None, _enable_hint("discord", setup.discord)),
    ]
    if setup.write_tokens and discord.token:
        lines.append(_key("token", discord.token, _TOKEN_HINT))
    lines += [
        _key("guild_ids", [], "server ids: commands show there at once; empty: global (~1 h)"),
        "",
    ]
    return "\n".join(lines)


def write(path: Path, text: str, *, private: bool) -> None:
    """Write the config; `private` (it holds a token): only its owner may read it."""
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    with contextlib.suppress(OSError):  # an existing file keeps its mode through O_TRUNC
        os.chmod(path, mode)


def _enable_hint(platform: str, enabled: PlatformSetup | None) -> str:
    variable = f"${platform.upper()}_TOKEN"
    if enabled is not None:
        return f"token from {variable} (or `token`)"
    return f"true to run on {platform.title()} too, token from {variable}"


def _key(key: str, value: object, comment: str = "") -> str:
    text = f"{key} = {_toml(value)}"
    if not comment:
        return text
    return f"{text.ljust(COMMENT_COLUMN - 1)} # {comment}"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # JSON's string escapes are all valid in a TOML basic string.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")
