"""A running Atelier (tiny engine, real SQLite, the real adapter) on the fake Bot API,
and small helpers to read what the bot sent.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from bot.adapters.telegram import TelegramAdapter
from bot.config import load_config
from bot.records import Job, JobStatus
from bot.services import Services

from .fake_bot_api import ApiCall, FakeBotApi

ADMIN_ID = 900
_user_ids = itertools.count(101)


def telegram_config(fake: FakeBotApi, tiny_model_dir: Path) -> str:
    """Extra config sections: Telegram on the fake, a second model, an admin."""
    return f"""
[models.tiny2]
source = "{tiny_model_dir}"
default_steps = 4
width = 64
height = 64

[limits]
jobs_per_minute = 100
max_queued_per_user = 10

[admins]
telegram = ["{ADMIN_ID}"]

[telegram]
enabled = true
token = "{fake.token}"
base_url = "{fake.base_url}"
base_file_url = "{fake.base_file_url}"
"""


@dataclass
class RunningBot:
    fake: FakeBotApi
    services: Services
    adapter: TelegramAdapter

    @classmethod
    async def start(cls, fake: FakeBotApi, config_path: Path, **options: Any) -> RunningBot:
        config = load_config(config_path)
        # $TELEGRAM_TOKEN, when set, wins over the file; the fake accepts whichever is used.
        fake.token = config.telegram.token
        services = await Services.start(config)
        # Short intervals keep tests fast; the defaults are for real chats.
        adapter = TelegramAdapter(
            services,
            **{"poll_timeout": 1, "status_interval": 0.5, "action_interval": 0.5, **options},
        )
        await adapter.start()
        return cls(fake, services, adapter)

    async def stop(self) -> None:
        """In the order `python -m bot run` stops (see bot/app.py)."""
        await self.adapter.stop_listening()
        await self.services.drain()
        await self.adapter.stop()
        await self.services.close()

    def new_user(self, first_name: str = "Ann", *, user_id: int | None = None) -> dict[str, Any]:
        return {"id": user_id or next(_user_ids), "is_bot": False, "first_name": first_name}

    async def jobs_of(self, user: dict[str, Any]) -> list[Job]:
        """Every job the store holds for this user, whatever its state."""
        jobs = await self.services.store.jobs_with_status(*JobStatus)
        return [job for job in jobs if job.user_id == str(user["id"])]

    async def result_photo(self, chat_id: int, since: int) -> ApiCall:
        return await self.fake.next_call("sendPhoto", since=since, chat_id=chat_id)

    async def click_button(self, user: dict[str, Any], message: dict[str, Any], label: str) -> int:
        """Press the button labelled `label` on the message as it is now; returns the mark
        to wait for the bot's answer from.
        """
        data = button_data(self.fake.current(message), label)
        mark = self.fake.mark()
        await self.fake.click(user, message, data)
        return mark


def button_data(message: dict[str, Any], label: str) -> str:
    for row in message["reply_markup"]["inline_keyboard"]:
        for button in row:
            if button["text"] == label:
                return button["callback_data"]
    labels = [b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row]
    raise AssertionError(f"no button {label!r} among {labels}")


def button_labels(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {"inline_keyboard": []}
    return [button["text"] for row in markup["inline_keyboard"] for button in row]


def png_bytes(width: int = 64, height: int = 64, color: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def image_of(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image


def png_parameters(data: bytes) -> str:
    """The A1111 `parameters` text chunk of a PNG."""
    with Image.open(io.BytesIO(data)) as image:
        return str(image.info.get("parameters", ""))
