"""What the fake Discord remembers: users, the guild, messages, interactions.

Payloads carry the fields discord.py 2.x reads (checked against its `state.py`,
`guild.py`, `member.py`, `message.py` and `interactions.py`), and nothing more.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000
ADMINISTRATOR = 1 << 3
EVERYONE_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 15) | (1 << 16) | (1 << 31)  # view, send...
EPHEMERAL = 1 << 6
LOADING = 1 << 7
# Discord ends an interaction's webhook token 15 minutes after the interaction.
TOKEN_LIFETIME_S = 15 * 60

_increment = itertools.count(1)


def snowflake(at: float | None = None) -> int:
    """A Discord id whose embedded time is `at` (unix seconds), like real ones."""
    ms = int((time.time() if at is None else at) * 1000)
    return ((ms - DISCORD_EPOCH_MS) << 22) | (next(_increment) & 0x3FFFFF)


def snowflake_time(value: int) -> float:
    return ((value >> 22) + DISCORD_EPOCH_MS) / 1000


@dataclass
class FakeUser:
    id: int
    name: str
    bot: bool = False
    roles: list[int] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "global_name": self.name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
        }

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass
class FakeChannel:
    id: int
    name: str
    nsfw: bool = False
    position: int = 0

    def payload(self, guild_id: int) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": 0,
            "guild_id": str(guild_id),
            "name": self.name,
            "position": self.position,
            "nsfw": self.nsfw,
            "permission_overwrites": [],
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
        }


@dataclass
class SentFile:
    """One attachment the bot uploaded."""

    id: int
    filename: str
    data: bytes
    content_type: str | None = None

    @property
    def spoiler(self) -> bool:
        return self.filename.startswith("SPOILER_")

    def payload(self, base_url: str) -> dict[str, Any]:
        url = f"{base_url}/attachments/{self.id}/{self.filename}"
        return {
            "id": str(self.id),
            "filename": self.filename,
            "size": len(self.data),
            "url": url,
            "proxy_url": url,
            "content_type": self.content_type or "application/octet-stream",
        }


@dataclass
class FakeMessage:
    id: int
    channel_id: int
    guild_id: int
    author: FakeUser
    content: str = ""
    flags: int = 0
    components: list[dict[str, Any]] = field(default_factory=list)
    files: list[SentFile] = field(default_factory=list)
    # Set for interaction responses and followups: the token they were sent with.
    interaction_token: str | None = None
    application_id: int | None = None
    deleted: bool = False
    # (loop time, content, number of files) after each create or edit, in order.
    history: list[tuple[float, str, int]] = field(default_factory=list)
    # (loop time, files uploaded with it) for each create or edit, in order.
    uploads: list[tuple[float, list[SentFile]]] = field(default_factory=list)
    nonce: str | None = None  # a channel message's nonce, when the sender gave one

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & LOADING)

    @property
    def results(self) -> list[SentFile]:
        """Its files other than a live preview of the picture being painted."""
        return [f for f in self.files if f.filename != "preview.jpg"]

    @property
    def files_at(self) -> float | None:
        """When files first appeared on this message (loop time)."""
        return next((at for at, _, files in self.history if files), None)

    @property
    def custom_ids(self) -> list[str]:
        return [
            button["custom_id"]
            for row in self.components
            for button in row.get("components", [])
            if "custom_id" in button
        ]

    @property
    def labels(self) -> list[str]:
        return [button.get("label", "") for row in self.components for button in row["components"]]

    def payload(self, base_url: str) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": 0 if self.interaction_token is None else 20,
            "channel_id": str(self.channel_id),
            "guild_id": str(self.guild_id),
            "author": self.author.payload(),
            "content": self.content,
            "flags": self.flags,
            "components": self.components,
            "attachments": [f.payload(base_url) for f in self.files],
            "embeds": [],
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "mention_everyone": False,
            "tts": False,
            "timestamp": _iso(snowflake_time(self.id)),
            "edited_timestamp": None,
        }
        if self.application_id is not None:
            data["application_id"] = str(self.application_id)
            data["webhook_id"] = str(self.application_id)
        return data


@dataclass
class FakeInteraction:
    """One interaction the fake dispatched, and everything the bot did with it."""

    id: int
    token: str
    type: int
    user: FakeUser
    channel_id: int
    payload: dict[str, Any]
    dispatched_at: float  # loop time
    # (loop time, body) for each POST .../callback, in order.
    callbacks: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    original: FakeMessage | None = None
    followups: list[FakeMessage] = field(default_factory=list)
    modal: dict[str, Any] | None = None  # the modal the bot answered with (type 9)

    @property
    def created_at(self) -> float:
        return snowflake_time(self.id)

    @property
    def expired(self) -> bool:
        return time.time() - self.created_at > TOKEN_LIFETIME_S

    @property
    def messages(self) -> list[FakeMessage]:
        """The messages of this interaction still shown (original first)."""
        found = [self.original] if self.original is not None else []
        return [m for m in [*found, *self.followups] if not m.deleted]

    @property
    def files(self) -> list[SentFile]:
        return [f for m in self.messages for f in m.files]

    @property
    def first_callback(self) -> dict[str, Any] | None:
        return self.callbacks[0][1] if self.callbacks else None


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(at))
