"""The gateway half of the fake Discord: HELLO, IDENTIFY -> READY + GUILD_CREATE,
heartbeat ACKs, and the dispatches tests send (INTERACTION_CREATE).

Mixed into `FakeDiscord`. Frames go out as plain JSON text, which discord.py accepts
next to its zlib stream.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .fake_models import ADMINISTRATOR, EVERYONE_PERMISSIONS, FakeUser, snowflake

if TYPE_CHECKING:
    from .fake_discord import FakeDiscord


class Gateway:
    async def dispatch(self: FakeDiscord, event: str, data: dict[str, Any]) -> None:
        assert self._sockets, "the bot is not connected to the gateway"
        self._sequence += 1
        frame = {"op": 0, "t": event, "s": self._sequence, "d": data}
        for ws in list(self._sockets):
            await ws.send_json(frame)

    async def _gateway(self: FakeDiscord, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        try:
            async for frame in ws:
                message = json.loads(frame.data)
                if message["op"] == 1:
                    await ws.send_json({"op": 11, "d": None, "s": None, "t": None})
                elif message["op"] == 2:
                    await self._identify(ws, message["d"], request)
        finally:
            self._sockets.remove(ws)
        return ws

    async def _identify(
        self: FakeDiscord, ws: web.WebSocketResponse, data: dict[str, Any], request
    ) -> None:
        if data["token"] != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        self.identify = data
        ready = {
            "v": 10,
            "user": {**self.bot.payload(), "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": "fake-session",
            "resume_gateway_url": f"{request.scheme}://{request.host}{request.path}",
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
        }
        for event, payload in (("READY", ready), ("GUILD_CREATE", self.guild_payload())):
            self._sequence += 1
            await ws.send_json({"op": 0, "t": event, "s": self._sequence, "d": payload})

    def guild_payload(self: FakeDiscord) -> dict[str, Any]:
        roles = [
            {
                "id": str(self.guild_id),
                "name": "@everyone",
                "permissions": str(EVERYONE_PERMISSIONS),
            },
            {"id": str(self.admin_role), "name": "Admins", "permissions": str(ADMINISTRATOR)},
        ]
        for position, role in enumerate(roles):
            role.update(position=position, color=0, hoist=False, managed=False, mentionable=False)
        return {
            "id": str(self.guild_id),
            "name": "Fake Guild",
            "owner_id": str(snowflake()),
            "unavailable": False,
            "member_count": len(self.users),
            "large": False,
            "premium_tier": 0,
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": roles,
            "channels": [c.payload(self.guild_id) for c in (self.channel, self.nsfw_channel)],
            "members": [self.member_payload(u) for u in self.users.values()],
            "voice_states": [],
            "presences": [],
            "threads": [],
            "joined_at": "2024-01-01T00:00:00+00:00",
        }

    def member_payload(self: FakeDiscord, user: FakeUser) -> dict[str, Any]:
        return {
            "user": user.payload(),
            "roles": [str(r) for r in user.roles],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
        }
