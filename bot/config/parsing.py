"""Reading a config file: TOML into the section dataclasses, key by key.

Types come from the dataclasses' annotations; a wrong type, an unknown key or a
missing one is one `ConfigError` line that names it. Tokens come from the
environment (`DISCORD_TOKEN`, `TELEGRAM_TOKEN`).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

from bot.config.checks import check_config
from bot.config.errors import ConfigError
from bot.config.sections import Config, ModelConfig

DEFAULT_CONFIG_PATH = Path("config.toml")
CONFIG_ENV_VAR = "ATELIER_CONFIG"


def config_path(cli_value: str | None) -> tuple[Path, bool]:
    """The config file to read, and whether the user named it explicitly."""
    if cli_value:
        return Path(cli_value), True
    if os.environ.get(CONFIG_ENV_VAR):
        return Path(os.environ[CONFIG_ENV_VAR]), True
    return DEFAULT_CONFIG_PATH, False


def load_config(path: Path, *, required: bool = True) -> Config:
    """Read and validate a config file; a missing optional file gives the defaults."""
    if not path.exists():
        if required:
            raise ConfigError(
                f"{path}: config file not found (copy config.example.toml and edit it)"
            )
        return _with_env_tokens(Config(base_dir=Path.cwd()))
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return parse_config(raw, base_dir=path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_config(raw: dict[str, Any], *, base_dir: Path) -> Config:
    sections: dict[str, Any] = {"base_dir": base_dir}
    hints = typing.get_type_hints(Config)
    for key, value in raw.items():
        if key not in hints or key == "base_dir":
            raise ConfigError(f"[{key}]: unknown section")
        if key == "models":
            if not isinstance(value, dict):
                raise ConfigError("[models]: must be a table of [models.NAME] tables")
            sections["models"] = {
                name: _build(ModelConfig, _local_source(body, base_dir), f"models.{name}")
                for name, body in value.items()
            }
        else:
            sections[key] = _build(hints[key], value, key)
    config = _with_env_tokens(Config(**sections))
    check_config(config)
    return config


def _local_source(body: Any, base_dir: Path) -> Any:
    """A model's local source read from the config's folder, so the model can be
    inspected for its defaults; hub ids stay as written."""
    if not isinstance(body, dict) or not isinstance(body.get("source"), str):
        return body
    source = Config(base_dir=base_dir).model_source(body["source"])
    return {**body, "source": source}


def _with_env_tokens(config: Config) -> Config:
    discord_token = os.environ.get("DISCORD_TOKEN") or config.discord.token
    telegram_token = os.environ.get("TELEGRAM_TOKEN") or config.telegram.token
    return dataclasses.replace(
        config,
        discord=dataclasses.replace(config.discord, token=discord_token),
        telegram=dataclasses.replace(config.telegram, token=telegram_token),
    )


def _build(cls: type, body: Any, section: str) -> Any:
    if not isinstance(body, dict):
        raise ConfigError(f"[{section}]: must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    values = {}
    for key, value in body.items():
        if key not in known:
            raise ConfigError(f"[{section}] {key}: unknown key (known: {', '.join(sorted(known))})")
        values[key] = _coerce(value, hints[key], f"[{section}] {key}")
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in values
        and f.init
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"[{section}] {missing[0]}: missing")
    return cls(**values)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where}: must be one of {', '.join(map(repr, allowed))}")
        return value
    if origin in (typing.Union, types.UnionType):
        # The first alternative that takes the value; else every alternative's complaint.
        complaints = []
        for alternative in typing.get_args(hint):
            if alternative is type(None):
                continue
            try:
                return _coerce(value, alternative, where)
            except ConfigError as exc:
                complaints.append(str(exc).removeprefix(f"{where}: "))
        raise ConfigError(f"{where}: {', or '.join(complaints)}")
    if dataclasses.is_dataclass(hint):  # a nested table, e.g. [engine.ray]
        return _build(hint, value, where.strip("[]").replace("] ", "."))
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: must be a list")
        return [_coerce(v, item, where) for v in value]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: must be a number")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: must be a whole number")
        return value
    if hint is str:
        # Ids are often written as numbers; keep them as strings to compare with platforms.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{where}: must be a string")
        return value
    return value
