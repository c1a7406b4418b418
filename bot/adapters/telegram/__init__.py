"""Telegram adapter (python-telegram-bot), run inside Atelier's event loop."""

from __future__ import annotations

from bot.adapters.telegram.adapter import TelegramAdapter

__all__ = ["TelegramAdapter"]
