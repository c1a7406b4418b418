"""Discord: slash commands, persistent result buttons, progress and results."""

from __future__ import annotations

from bot.adapters.discord.adapter import DiscordAdapter

__all__ = ["DiscordAdapter"]
