"""A small fake Discord on 127.0.0.1: the REST routes and the gateway discord.py uses.

The real discord.py talks to it: `discord.http.Route.BASE` and
`discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY` are pointed here while it runs.
It keeps Discord's rules that matter to a bot: an interaction must be acknowledged
once and within 3 s, its token dies after 15 minutes, the first followup after a
"thinking" deferral replaces that message, 429s carry `retry_after`. Tests dispatch
interactions through the gateway and wait for what the bot did with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import discord
import yarl
from aiohttp import web

from .fake_gateway import Gateway
from .fake_models import (
    ADMINISTRATOR,
    EPHEMERAL,
    EVERYONE_PERMISSIONS,
    LOADING,
    FakeChannel,
    FakeInteraction,
    FakeMessage,
    FakeUser,
    SentFile,
    snowflake,
)
from .fake_routes import RestRoutes, json_error, json_response, modal_inputs

ACK_DEADLINE_S = 3.0


@dataclass
class Failure:
    """The next `times` requests matching method + path regex answer `status`."""

    method: str
    path: re.Pattern[str]
    status: int
    times: int
    retry_after: float
    multipart_only: bool


class FakeDiscord(RestRoutes, Gateway):
    def __init__(self) -> None:
        self.token = "fake-token.NEVER-LOG-ME.abc123"
        self.application_id = snowflake()
        self.bot = FakeUser(snowflake(), "Atelier", bot=True)
        self.guild_id = snowflake()
        self.admin_role = snowflake()
        self.channel = FakeChannel(snowflake(), "general")
        self.nsfw_channel = FakeChannel(snowflake(), "after-dark", nsfw=True, position=1)
        self.users: dict[int, FakeUser] = {self.bot.id: self.bot}
        self.attachment_size_limit = 10 * 1024 * 1024
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # guild id (None: global)
        self.messages: dict[int, FakeMessage] = {}
        self.interactions: dict[str, FakeInteraction] = {}  # by token
        self.uploads: dict[int, tuple[str, bytes, str]] = {}  # attachments users sent
        self.requests: list[tuple[str, str]] = []  # "METHOD path" of every REST call
        self.unhandled: list[str] = []
        self.failures: list[Failure] = []
        self.failed: list[tuple[str, str, int]] = []
        # (method, path pattern, seconds): matching requests are answered that late.
        self.slow: list[tuple[str, re.Pattern[str], float]] = []
        self.identify: dict[str, Any] | None = None
        self.dm_channels: dict[int, int] = {}  # user id -> their DM channel with the bot
        self.closed_dms: set[int] = set()  # users who take no DMs from server members
        self._changed = asyncio.Condition()
        self._sockets: list[web.WebSocketResponse] = []
        self._sequence = 0
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ---- lifetime -------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self, port: int = 0) -> AsyncIterator[FakeDiscord]:
        """Serve on a loopback port (default: a free one) and point discord.py at it
        meanwhile."""
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{id}/{filename}", self._attachment)
        self.add_rest_routes(app.router)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = f"{self.base_url}/api/v10"
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
            f"ws://127.0.0.1:{port}/gateway"
        )
        try:
            yield self
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway
            for ws in list(self._sockets):
                await ws.close()
            await self._runner.cleanup()

    # ---- people and places ------------------------------------------------------

    def add_user(self, name: str, *, administrator: bool = False) -> FakeUser:
        user = FakeUser(snowflake(), name, roles=[self.admin_role] if administrator else [])
        self.users[user.id] = user
        return user

    def permissions_of(self, user: FakeUser) -> int:
        return ADMINISTRATOR | EVERYONE_PERMISSIONS if user.roles else EVERYONE_PERMISSIONS

    def upload(
        self, data: bytes, filename: str, content_type: str, size: int | None = None
    ) -> dict[str, Any]:
        """An attachment as a user sends it; the bot downloads it from this server."""
        attachment_id = snowflake()
        self.uploads[attachment_id] = (filename, data, content_type)
        url = f"{self.base_url}/attachments/{attachment_id}/{filename}"
        return {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data) if size is None else size,
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }

    # ---- interactions -------------------------------------------------------------

    async def slash(
        self,
        name: str,
        user: FakeUser,
        /,
        *,
        channel: FakeChannel | None = None,
        created_at: float | None = None,
        **options: Any,
    ) -> FakeInteraction:
        """A user runs `/name option=value...`; options are typed as the bot registered."""
        command, data_options, resolved = self._command_options(name, options)
        data = {
            "id": command["id"],
            "name": name,
            "type": 1,
            "options": data_options,
            "resolved": resolved,
        }
        if "guild_id" in command:  # only commands registered for the guild carry it
            data["guild_id"] = command["guild_id"]
        return await self._interact(2, data, user, channel, created_at=created_at)

    async def autocomplete(
        self, name: str, user: FakeUser, focused: str, /, **options: Any
    ) -> list[dict[str, Any]]:
        """The user types into option `focused`; returns the choices the bot offered."""
        command, data_options, _ = self._command_options(name, options)
        for option in data_options:
            option["focused"] = option["name"] == focused
        data = {"id": command["id"], "name": name, "type": 1, "options": data_options}
        interaction = await self._interact(4, data, user, None)
        await self.wait_for(lambda: interaction.callbacks, what="autocomplete answer")
        body = interaction.callbacks[0][1]
        assert body["type"] == 8, body
        return body["data"]["choices"]

    async def click(
        self,
        message: FakeMessage,
        custom_id: str,
        user: FakeUser,
        *,
        created_at: float | None = None,
    ) -> FakeInteraction:
        """A user presses the button with `custom_id` on `message`."""
        assert custom_id in message.custom_ids, (custom_id, message.custom_ids)
        data = {"custom_id": custom_id, "component_type": 2}
        channel = self.nsfw_channel if message.channel_id == self.nsfw_channel.id else self.channel
        return await self._interact(
            3, data, user, channel, message=message.payload(self.base_url), created_at=created_at
        )

    async def select(
        self, message: FakeMessage, custom_id: str, values: list[str], user: FakeUser
    ) -> FakeInteraction:
        """A user picks `values` in the select menu `custom_id` on `message`."""
        assert custom_id in message.custom_ids, (custom_id, message.custom_ids)
        data = {"custom_id": custom_id, "component_type": 3, "values": values}
        return await self._interact(3, data, user, None, message=message.payload(self.base_url))

    async def submit_modal(
        self, shown: FakeInteraction, values: dict[str, str], user: FakeUser
    ) -> FakeInteraction:
        """The user fills in the modal `shown` answered with (text inputs by their
        label or custom_id) and submits it: a MODAL_SUBMIT interaction (type 5)."""
        assert shown.modal is not None, "the bot answered with no modal"
        rows = []
        for text_input in modal_inputs(shown.modal):
            key = text_input.get("label") if text_input.get("label") in values else None
            value = values.get(key or text_input["custom_id"], text_input.get("value", ""))
            answer = {"type": 4, "custom_id": text_input["custom_id"], "value": value}
            rows.append({"type": 1, "components": [answer]})
        data = {"custom_id": shown.modal["custom_id"], "components": rows}
        channel = self.channel if shown.channel_id == self.channel.id else self.nsfw_channel
        return await self._interact(5, data, user, channel, message=shown.payload.get("message"))

    async def slash_unregistered(self, name: str, user: FakeUser) -> FakeInteraction:
        """A command the bot did not register (still in a user's menu from before)."""
        data = {"id": str(snowflake()), "name": name, "type": 1, "options": []}
        return await self._interact(2, data, user, None)

    def _command_options(
        self, name: str, options: dict[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        registered = self.commands.get(self.guild_id, []) + self.commands.get(None, [])
        command = next((c for c in registered if c["name"] == name), None)
        assert command is not None, f"/{name} was not registered"
        types = {o["name"]: o["type"] for o in command.get("options", [])}
        data_options: list[dict[str, Any]] = []
        resolved: dict[str, Any] = {}
        for key, value in options.items():
            assert key in types, f"/{name} has no option {key!r} (has {sorted(types)})"
            if types[key] == 11:  # attachment: the value is an upload() result
                resolved.setdefault("attachments", {})[value["id"]] = value
                value = value["id"]
            data_options.append({"name": key, "type": types[key], "value": value})
        return command, data_options, resolved

    async def _interact(
        self,
        kind: int,
        data: dict[str, Any],
        user: FakeUser,
        channel: FakeChannel | None,
        *,
        message: dict[str, Any] | None = None,
        created_at: float | None = None,
    ) -> FakeInteraction:
        channel = channel or self.channel
        interaction_id = snowflake(created_at)
        token = f"itoken-{interaction_id}"
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "guild_id": str(self.guild_id),
            "channel_id": str(channel.id),
            "channel": channel.payload(self.guild_id),
            "member": {**self.member_payload(user), "permissions": str(self.permissions_of(user))},
            "token": token,
            "version": 1,
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": str(EVERYONE_PERMISSIONS),
            "attachment_size_limit": self.attachment_size_limit,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
        }
        if message is not None:
            payload["message"] = message
        interaction = FakeInteraction(
            interaction_id,
            token,
            kind,
            user,
            channel.id,
            payload,
            asyncio.get_running_loop().time(),
        )
        self.interactions[token] = interaction
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction

    # ---- waiting ------------------------------------------------------------------

    async def wait_for(
        self, predicate: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition"
    ) -> Any:
        """Wait until `predicate()` is truthy (checked after every request)."""
        async with self._changed:
            try:
                return await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
            except TimeoutError:
                raise AssertionError(f"timed out waiting for {what}") from None

    async def wait_files(
        self, interaction: FakeInteraction, count: int, *, timeout: float = 30.0
    ) -> FakeMessage:
        """The first message of `interaction` that carries at least `count` files (a
        live preview on the status is not one of them)."""

        def found() -> FakeMessage | None:
            return next((m for m in interaction.messages if len(m.results) >= count), None)

        return await self.wait_for(found, timeout=timeout, what=f"{count} file(s)")

    async def wait_reply(
        self, interaction: FakeInteraction, *, timeout: float = 30.0
    ) -> FakeMessage:
        """The first message of `interaction` that is not loading and has text."""

        def found() -> FakeMessage | None:
            return next((m for m in interaction.messages if m.content and not m.loading), None)

        return await self.wait_for(found, timeout=timeout, what="a reply")

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def fail_next(
        self,
        method: str,
        path: str,
        status: int,
        *,
        times: int = 1,
        retry_after: float = 0.3,
        multipart_only: bool = False,
    ) -> None:
        """Make the next matching calls fail (429 with retry_after, or a 5xx)."""
        self.failures.append(
            Failure(method, re.compile(path), status, times, retry_after, multipart_only)
        )

    def channel_messages(self, channel: FakeChannel) -> list[FakeMessage]:
        return [
            m
            for m in self.messages.values()
            if m.channel_id == channel.id and not m.deleted and m.interaction_token is None
        ]

    # ---- plumbing -------------------------------------------------------------------

    async def _attachment(self, request: web.Request) -> web.Response:
        found = self.uploads.get(int(request.match_info["id"]))
        if found is None:
            raise web.HTTPNotFound()
        _filename, data, content_type = found
        return web.Response(body=data, content_type=content_type)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        path = request.path.removeprefix("/api/v10")
        self.requests.append((request.method, path))
        try:
            failure = self._take_failure(request, path)
            if failure is not None:
                self.failed.append((request.method, path, failure.status))
                # Read the upload first, as a real server does: an answer sent before
                # the body leaves it in the connection for the next request to trip on.
                await request.read()
                return _failure_response(failure)
            for method, pattern, seconds in self.slow:
                if method == request.method and pattern.search(path):
                    await asyncio.sleep(seconds)  # a slow upload, say
            return await handler(request)
        finally:
            await self.notify()

    def _take_failure(self, request: web.Request, path: str) -> Failure | None:
        for failure in self.failures:
            if failure.times <= 0 or failure.method != request.method:
                continue
            if not failure.path.search(path):
                continue
            if failure.multipart_only and request.content_type != "multipart/form-data":
                continue
            failure.times -= 1
            return failure
        return None

    def interaction_by_token(self, token: str) -> FakeInteraction:
        interaction = self.interactions.get(token)
        if interaction is None:
            raise json_error(404, 10015, "Unknown Webhook")
        if interaction.expired:
            raise json_error(401, 50027, "Invalid Webhook Token")
        return interaction

    def check_ack(self, interaction: FakeInteraction) -> None:
        if interaction.callbacks:
            raise json_error(400, 40060, "Interaction has already been acknowledged.")
        late = asyncio.get_running_loop().time() - interaction.dispatched_at
        if late > ACK_DEADLINE_S or interaction.expired:
            raise json_error(404, 10062, "Unknown interaction")

    def new_message(self, channel_id: int, **fields: Any) -> FakeMessage:
        message = FakeMessage(snowflake(), channel_id, self.guild_id, self.bot, **fields)
        self.messages[message.id] = message
        return message

    def new_file(self, filename: str, data: bytes, content_type: str | None) -> SentFile:
        return SentFile(snowflake(), filename, data, content_type)


def _failure_response(failure: Failure) -> web.Response:
    if failure.status == 429:
        headers = {
            "Retry-After": f"{failure.retry_after}",
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": f"{failure.retry_after}",
            "X-RateLimit-Bucket": "fake-bucket",
            "X-RateLimit-Scope": "user",
            # discord.py treats a 429 without Via as a Cloudflare ban and gives up.
            "Via": "1.1 google",
        }
        body = {"message": "You are being rate limited.", "retry_after": failure.retry_after}
        return json_response({**body, "global": False}, status=429, headers=headers)
    return web.Response(status=failure.status, text="upstream error")


__all__ = ["EPHEMERAL", "LOADING", "FakeDiscord", "FakeInteraction", "FakeMessage", "FakeUser"]
