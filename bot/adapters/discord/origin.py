"""Where a Discord job's progress and result go, stored in the job's `origin`.

Everything needed is plain data so a job resumed after a restart can still answer:
the interaction's webhook (application id + token, valid 15 minutes), and the
channel to fall back to once the token has expired.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import discord

# Discord ends an interaction token 15 minutes after the interaction; leave margin
# for an upload that starts just before.
TOKEN_LIFETIME_S = 15 * 60 - 30


@dataclass(frozen=True)
class DiscordOrigin:
    application_id: int
    token: str = dataclasses.field(repr=False)
    channel_id: int
    guild_id: int | None
    user_id: int
    interaction_at: float  # unix time of the interaction
    response_id: int | None  # the deferred response message, edited with status
    upload_limit: int  # bytes per message, as Discord reported for the interaction
    nsfw_channel: bool

    @classmethod
    def from_interaction(
        cls,
        interaction: discord.Interaction[Any],
        response_id: int | None,
    ) -> DiscordOrigin:
        # Guild channels and threads know whether they are NSFW; DMs do not.
        is_nsfw = getattr(interaction.channel, "is_nsfw", None)
        return cls(
            application_id=interaction.application_id,
            token=interaction.token,
            channel_id=interaction.channel_id or 0,
            guild_id=interaction.guild_id,
            user_id=interaction.user.id,
            interaction_at=interaction.created_at.timestamp(),
            response_id=response_id,
            upload_limit=interaction.filesize_limit,
            nsfw_channel=bool(is_nsfw is not None and is_nsfw()),
        )

    @classmethod
    def from_job_origin(cls, origin: dict[str, Any]) -> DiscordOrigin | None:
        """None for an origin this adapter did not write (or an older, unknown shape)."""
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in origin.items() if k in names})
        except TypeError:
            return None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def token_alive(self) -> bool:
        return time.time() - self.interaction_at < TOKEN_LIFETIME_S
