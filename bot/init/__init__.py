"""`python -m bot init`: write a first config.toml for a new admin (see `wizard`)."""

from __future__ import annotations

from bot.init.wizard import add_init_arguments, run_init

__all__ = ["add_init_arguments", "run_init"]
