"""The REST half of the fake Discord: the routes discord.py calls, Discord's answers.

Mixed into `FakeDiscord`, whose state (messages, interactions, users) it edits.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .fake_models import EPHEMERAL, LOADING, FakeInteraction, FakeMessage, SentFile, snowflake

if TYPE_CHECKING:
    from .fake_discord import FakeDiscord

API = "/api/v10"


class RestRoutes:
    def add_rest_routes(self: FakeDiscord, router: web.UrlDispatcher) -> None:
        webhook = API + "/webhooks/{app}/{token}"
        router.add_get(API + "/users/@me", self._me)
        router.add_get(API + "/oauth2/applications/@me", self._application)
        router.add_put(API + "/applications/{app}/commands", self._sync)
        router.add_put(API + "/applications/{app}/guilds/{guild}/commands", self._sync)
        router.add_post(API + "/interactions/{id}/{token}/callback", self._callback)
        router.add_post(webhook, self._followup)
        router.add_get(webhook + "/messages/{message}", self._get_webhook_message)
        router.add_patch(webhook + "/messages/{message}", self._edit_webhook_message)
        router.add_delete(webhook + "/messages/{message}", self._delete_webhook_message)
        router.add_post(API + "/users/@me/channels", self._open_dm)
        router.add_get(API + "/channels/{channel}", self._get_channel)
        router.add_post(API + "/channels/{channel}/messages", self._channel_message)
        router.add_delete(API + "/channels/{channel}/messages/{message}", self._delete_message)
        router.add_route("*", API + "/{tail:.*}", self._unhandled)

    # ---- bot-authenticated routes ----------------------------------------------

    def _check_auth(self: FakeDiscord, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bot {self.token}":
            raise json_error(401, 0, "401: Unauthorized")

    async def _me(self: FakeDiscord, request: web.Request) -> web.Response:
        self._check_auth(request)
        return json_response({**self.bot.payload(), "verified": True, "flags": 0})

    async def _application(self: FakeDiscord, request: web.Request) -> web.Response:
        self._check_auth(request)
        owner = next(u for u in self.users.values() if not u.bot) if len(self.users) > 1 else None
        return json_response(
            {
                "id": str(self.application_id),
                "name": self.bot.name,
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": (owner or self.bot).payload(),
                "verify_key": "0" * 64,
                "flags": 0,
                "team": None,
            }
        )

    async def _sync(self: FakeDiscord, request: web.Request) -> web.Response:
        self._check_auth(request)
        assert int(request.match_info["app"]) == self.application_id
        guild = request.match_info.get("guild")
        guild_id = int(guild) if guild else None
        commands = []
        for command in await request.json():
            command = {
                **command,
                "id": str(snowflake()),
                "application_id": str(self.application_id),
                "version": str(snowflake()),
            }
            if guild_id is not None:
                command["guild_id"] = str(guild_id)
            commands.append(command)
        self.commands[guild_id] = commands
        return json_response(commands)

    async def _get_channel(self: FakeDiscord, request: web.Request) -> web.Response:
        self._check_auth(request)
        channel_id = int(request.match_info["channel"])
        for channel in (self.channel, self.nsfw_channel):
            if channel.id == channel_id:
                return json_response(channel.payload(self.guild_id))
        raise web.HTTPNotFound()

    async def _open_dm(self: FakeDiscord, request: web.Request) -> web.Response:
        self._check_auth(request)
        user = self.users[int((await request.json())["recipient_id"])]
        channel_id = self.dm_channels.setdefault(user.id, snowflake())
        return json_response(
            {
                "id": str(channel_id),
                "type": 1,
                "last_message_id": None,
                "recipients": [user.payload()],
            }
        )

    async def _channel_message(self: FakeDiscord, request: web.Request) -> web.Response:
        self._check_auth(request)
        payload, uploads = await _read_body(self, request)
        channel_id = int(request.match_info["channel"])
        dm_of = next((user for user, dm in self.dm_channels.items() if dm == channel_id), None)
        if dm_of in self.closed_dms:
            raise json_error(403, 50007, "Cannot send messages to this user")
        nonce = payload.get("nonce")
        if nonce is not None and payload.get("enforce_nonce"):
            # Discord answers a repeated nonce (within minutes) with the first message.
            for earlier in self.messages.values():
                if earlier.channel_id == channel_id and earlier.nonce == nonce:
                    return json_response(earlier.payload(self.base_url))
        message = self.new_message(channel_id)
        message.nonce = nonce
        _apply(message, payload, uploads)
        return json_response(message.payload(self.base_url))

    async def _delete_message(self: FakeDiscord, request: web.Request) -> web.Response:
        self._check_auth(request)
        message = self.messages.get(int(request.match_info["message"]))
        if message is None or message.deleted or message.ephemeral:
            raise _unknown_message()
        message.deleted = True
        return web.Response(status=204)

    # ---- interaction routes (authorised by the interaction token) ----------------

    async def _callback(self: FakeDiscord, request: web.Request) -> web.Response:
        interaction = self.interactions.get(request.match_info["token"])
        if interaction is None or str(interaction.id) != request.match_info["id"]:
            raise web.HTTPNotFound()
        self.check_ack(interaction)
        body, uploads = await _read_body(self, request)
        interaction.callbacks.append((asyncio.get_running_loop().time(), body))
        kind, data = body["type"], body.get("data") or {}
        message: FakeMessage | None = None
        if kind in (4, 5):
            message = self._original(interaction)
            if kind == 5:
                message.flags = LOADING | (data.get("flags", 0) & EPHEMERAL)
            else:
                message.flags = data.get("flags", 0) & EPHEMERAL
                _apply(message, data, uploads)
        elif kind == 7:
            message = self.messages[int(interaction.payload["message"]["id"])]
            _apply(message, data, uploads)
        elif kind == 9:
            _check_modal(data)
            interaction.modal = data  # shown to the user, who may submit it
        answer: dict[str, Any] = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(message and message.ephemeral),
            }
        }
        if message is not None:
            answer["interaction"]["response_message_id"] = str(message.id)
            answer["resource"] = {"type": kind, "message": message.payload(self.base_url)}
        return json_response(answer)

    def _original(self: FakeDiscord, interaction: FakeInteraction) -> FakeMessage:
        message = self.new_message(
            interaction.channel_id,
            interaction_token=interaction.token,
            application_id=self.application_id,
        )
        interaction.original = message
        return message

    async def _followup(self: FakeDiscord, request: web.Request) -> web.Response:
        interaction = self.interaction_by_token(request.match_info["token"])
        if not interaction.callbacks:
            raise json_error(404, 10015, "Unknown Webhook")
        payload, uploads = await _read_body(self, request)
        original = interaction.original
        if original is not None and original.loading and not original.deleted:
            # Discord: the first followup after a deferral replaces the "thinking"
            # message and keeps its visibility, whatever flags it asks for.
            message = original
            payload = {k: v for k, v in payload.items() if k != "flags"}
        else:
            message = self.new_message(
                interaction.channel_id,
                interaction_token=interaction.token,
                application_id=self.application_id,
            )
            message.flags = payload.get("flags", 0) & EPHEMERAL
            interaction.followups.append(message)
        _apply(message, payload, uploads)
        if request.query.get("wait") in ("1", "true", "True"):
            return json_response(message.payload(self.base_url))
        return web.Response(status=204)

    def _webhook_message(self: FakeDiscord, request: web.Request) -> FakeMessage:
        interaction = self.interaction_by_token(request.match_info["token"])
        wanted = request.match_info["message"]
        for message in [interaction.original, *interaction.followups]:
            if message is None or message.deleted:
                continue
            if wanted == "@original" and message is interaction.original:
                return message
            if wanted == str(message.id):
                return message
        raise _unknown_message()

    async def _get_webhook_message(self: FakeDiscord, request: web.Request) -> web.Response:
        return json_response(self._webhook_message(request).payload(self.base_url))

    async def _edit_webhook_message(self: FakeDiscord, request: web.Request) -> web.Response:
        message = self._webhook_message(request)
        payload, uploads = await _read_body(self, request)
        _apply(message, payload, uploads)
        return json_response(message.payload(self.base_url))

    async def _delete_webhook_message(self: FakeDiscord, request: web.Request) -> web.Response:
        self._webhook_message(request).deleted = True
        return web.Response(status=204)

    async def _unhandled(self: FakeDiscord, request: web.Request) -> web.Response:
        self.unhandled.append(f"{request.method} {request.path}")
        return json_response({"message": "404: Not Found", "code": 0}, status=404)


async def _read_body(
    fake: FakeDiscord, request: web.Request
) -> tuple[dict[str, Any], dict[int, SentFile]]:
    """The JSON payload and the uploaded files (by their `files[N]` index)."""
    if request.content_type != "multipart/form-data":
        text = await request.text()
        return (json.loads(text) if text else {}), {}
    payload: dict[str, Any] = {}
    uploads: dict[int, SentFile] = {}
    reader = await request.multipart()
    async for part in reader:
        if part.name == "payload_json":
            payload = json.loads(await part.text())
        elif part.name and part.name.startswith("files["):
            index = int(part.name[len("files[") : -1])
            data = bytes(await part.read(decode=False))
            content_type = part.headers.get("Content-Type")
            uploads[index] = fake.new_file(part.filename or f"file{index}", data, content_type)
    return payload, uploads


def _apply(message: FakeMessage, payload: dict[str, Any], uploads: dict[int, SentFile]) -> None:
    """Create or edit `message` the way Discord applies a message payload."""
    message.flags &= ~LOADING
    uploaded = list(uploads.values())
    if "content" in payload:
        message.content = payload["content"] or ""
    if "components" in payload:
        message.components = payload["components"] or []
    if "attachments" in payload:
        kept = {f.id: f for f in message.files}
        files: list[SentFile] = []
        for entry in payload["attachments"] or []:
            entry_id = int(entry["id"])
            if entry_id in uploads:
                files.append(uploads.pop(entry_id))
            elif entry_id in kept:
                files.append(kept[entry_id])
        message.files = files + list(uploads.values())
    elif uploads:
        message.files = [*message.files, *uploads.values()]
    now = asyncio.get_running_loop().time()
    message.history.append((now, message.content, len(message.files)))
    message.uploads.append((now, uploaded))


def _check_modal(data: dict[str, Any]) -> None:
    """Discord's limits on a modal: a title of 1-45, a custom_id of 1-100 characters,
    1-5 rows (or labels), text inputs of at most 4,000 characters."""
    if not 1 <= len(data.get("title", "")) <= 45:
        raise json_error(400, 50035, "Invalid Form Body: title")
    if not 1 <= len(data.get("custom_id", "")) <= 100:
        raise json_error(400, 50035, "Invalid Form Body: custom_id")
    if not 1 <= len(data.get("components", [])) <= 5:
        raise json_error(400, 50035, "Invalid Form Body: components")
    for text_input in modal_inputs(data):
        if len(text_input.get("value", "") or "") > text_input.get("max_length", 4000):
            raise json_error(400, 50035, "Invalid Form Body: value")


def modal_inputs(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The text inputs of a modal, in rows (type 1) or labels (type 18)."""
    found = []
    for component in data.get("components", []):
        inner = component.get("components") or [component.get("component") or {}]
        found += [item for item in inner if item.get("type") == 4]
    return found


def _unknown_message() -> web.HTTPException:
    return json_error(404, 10008, "Unknown Message")


_ERRORS = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
}
# discord.py parses a body as JSON only when the content type is exactly this.
_JSON = {"Content-Type": "application/json"}


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None):
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={**_JSON, **(headers or {})}
    )


def json_error(status: int, code: int, message: str) -> web.HTTPException:
    """Discord's error body: `{"message": ..., "code": ...}` (discord.py reads both)."""
    body = json.dumps({"message": message, "code": code}).encode()
    return _ERRORS[status](body=body, headers=_JSON)
