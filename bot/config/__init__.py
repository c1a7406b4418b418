"""Atelier's configuration: a TOML file loaded into typed, validated dataclasses.

Every mistake is reported as one `ConfigError` line that names the key and says what
is wrong. Tokens come from the environment (`DISCORD_TOKEN`, `TELEGRAM_TOKEN`) and
are kept out of `repr` so they never reach a log.

`sections.py` holds the dataclasses (one per TOML section), `parsing.py` reads a file
into them, `checks.py` validates the result; everything is imported from here.
"""

from __future__ import annotations

from bot.config.checks import is_user_id
from bot.config.errors import ConfigError
from bot.config.parsing import (
    CONFIG_ENV_VAR,
    DEFAULT_CONFIG_PATH,
    config_path,
    load_config,
    parse_config,
)
from bot.config.sections import (
    AdminsConfig,
    AvatarConfig,
    Config,
    DiscordConfig,
    EngineConfig,
    LimitsConfig,
    LorasConfig,
    ModelConfig,
    RayConfig,
    SafetyConfig,
    StorageConfig,
    TelegramConfig,
    UpscaleConfig,
)

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CONFIG_PATH",
    "AdminsConfig",
    "AvatarConfig",
    "Config",
    "ConfigError",
    "DiscordConfig",
    "EngineConfig",
    "LimitsConfig",
    "LorasConfig",
    "ModelConfig",
    "RayConfig",
    "SafetyConfig",
    "StorageConfig",
    "TelegramConfig",
    "UpscaleConfig",
    "config_path",
    "is_user_id",
    "load_config",
    "parse_config",
]
