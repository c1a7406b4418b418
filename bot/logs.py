"""The bot's logging: the engine's set-up (engine/logs.py), plus what only the bot
needs: its chat libraries' harmless chatter dropped, and every line redacted."""

from __future__ import annotations

from bot import redaction
from engine import logs as engine_logs
from engine.logs import (
    CHATTY,
    FORMAT_ENV,
    FORMATS,
    LEVEL_ENV,
    LEVELS,
    Harmless,
    parse_level,
    resolve,
)

__all__ = [
    "CHATTY",
    "FORMATS",
    "FORMAT_ENV",
    "HARMLESS",
    "LEVELS",
    "LEVEL_ENV",
    "configure_logging",
    "parse_level",
    "resolve",
]

HARMLESS = (
    *engine_logs.HARMLESS,
    # The bot never joins a voice channel.
    Harmless("discord.client", r"(PyNaCl|davey) is not installed, voice will NOT be supported"),
)


def configure_logging(level: int | str, *, json: bool | None = None) -> None:
    engine_logs.configure_logging(
        level,
        json=json,
        process="bot",
        harmless=HARMLESS,
        filters=(redaction.RedactingFilter(),),
    )
    redaction.route_uncaught()
