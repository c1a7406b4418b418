"""A running Atelier (Services + DiscordAdapter) connected to the fake Discord, and
small helpers the Discord tests share.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.adapters.discord import DiscordAdapter
from bot.config import Config, load_config
from bot.records import JobStatus
from bot.services import Services

from .fake_discord import EPHEMERAL, FakeDiscord, FakeInteraction, FakeMessage, FakeUser


@dataclass
class Users:
    alice: FakeUser  # an ordinary member
    bob: FakeUser  # another ordinary member
    root: FakeUser  # listed in [admins] discord
    boss: FakeUser  # has the Administrator permission in the guild


@dataclass
class RunningBot:
    """Atelier as `python -m bot run` starts it, with Discord only."""

    fake: FakeDiscord
    config_path: Path
    users: Users
    services: Services | None = None
    adapter: DiscordAdapter | None = None
    adapter_options: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Config:
        assert self.services is not None
        return self.services.config

    async def start(self) -> None:
        with pytest.MonkeyPatch.context() as env:
            env.delenv("DISCORD_TOKEN", raising=False)
            config = load_config(self.config_path)
        self.services = await Services.start(config)
        # guild_ready_timeout: the fake sends its one guild at once; no need to wait 2 s.
        self.adapter = DiscordAdapter(
            self.services, **{"guild_ready_timeout": 0.05, **self.adapter_options}
        )
        await self.adapter.start()

    async def stop(self) -> None:
        """In the order `python -m bot run` stops (see bot/app.py)."""
        if self.adapter is not None:
            await self.adapter.stop_listening()
        if self.services is not None:
            await self.services.drain()
        if self.adapter is not None:
            await self.adapter.stop()
        if self.services is not None:
            await self.services.close()
        self.adapter = self.services = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def job_count(self) -> int:
        assert self.services is not None
        return len(await self.services.store.jobs_with_status(*JobStatus))

    async def result(self, interaction: FakeInteraction, count: int = 1) -> FakeMessage:
        """The message of `interaction` that carries its picture(s)."""
        return await self.fake.wait_files(interaction, count + (1 if count > 1 else 0))

    async def private_reply(self, interaction: FakeInteraction) -> FakeMessage:
        """The one message the user sees for a refusal: ephemeral, nothing else left."""
        message = await self.fake.wait_reply(interaction)
        assert message.flags & EPHEMERAL, message
        assert interaction.messages == [message], interaction.messages
        return message


def discord_section(
    fake: FakeDiscord, tiny_model_dir: Path, users: Users, *, guild_sync: bool
) -> str:
    guild_ids = [fake.guild_id] if guild_sync else []
    return f"""
[models.tiny2]
source = "{tiny_model_dir}"
default_steps = 2
width = 128
height = 128

[limits]
jobs_per_minute = 1000
max_queued_per_user = 20

[admins]
discord = ["{users.root.id}"]
discord_guild_administrators = true

[discord]
enabled = true
token = "{fake.token}"
guild_ids = {guild_ids}
"""


def png_bytes(width: int = 64, height: int = 64, color: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def png_parameters(data: bytes) -> str:
    """The A1111 `parameters` text chunk of a PNG."""
    with Image.open(io.BytesIO(data)) as image:
        return image.text.get("parameters", "")  # type: ignore[attr-defined]
