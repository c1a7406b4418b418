"""A small fake of Telegram's Bot API on 127.0.0.1, for driving the real python-telegram-bot.

It speaks the same HTTP the real server does (form or multipart requests, JSON answers,
`getUpdates` long polling, file downloads under the file URL) and enforces the limits
that real Telegram enforces and a bot can trip over (see `fake_bot_methods.py`). Tests
inject user messages and button clicks, then wait for the bot's calls.
"""

from __future__ import annotations

import asyncio
import copy
import io
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

from .fake_bot_methods import (
    ApiRefusal,
    BotApiMethods,
    StoredFile,
    UploadedFile,
    add_caption,
    command_entities,
    photo_size,
)

_JSON_FIELDS = {
    "reply_markup",
    "media",
    "entities",
    "caption_entities",
    "reply_parameters",
    "commands",
    "scope",
    "allowed_updates",
    "link_preview_options",
}
_INT_FIELDS = {"offset", "limit", "timeout", "message_id", "reply_to_message_id", "chat_id"}


@dataclass(frozen=True)
class ApiCall:
    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    result: Any  # what the fake answered; None for a refused call
    refused: int | None = None  # the HTTP status of a refusal
    at: float = field(default_factory=time.monotonic)

    @property
    def chat_id(self) -> int | None:
        return self.params.get("chat_id")


@dataclass
class _Failure:
    remaining: int
    status: int
    retry_after: int


@dataclass
class Fault:
    """A misbehaviour for the calls `method` whose parameters `where` accepts.

    `refuse`: answer with that HTTP status (429 with `retry_after`) and do nothing.
    `answer_after`: do what the call asks (it arrives), then answer only after that
    many seconds (`math.inf`: never) — a platform slower than the client's time-out.
    """

    method: str
    where: Callable[[dict[str, Any]], bool] = lambda params: True
    refuse: int | None = None
    retry_after: int = 1
    answer_after: float | None = None
    hits: int = 0


@dataclass
class FakeBotApi(BotApiMethods):
    token: str = "123:TEST"
    bot_username: str = "AtelierTestBot"
    bot_id: int = 123
    calls: list[ApiCall] = field(default_factory=list)
    # (chat id, message id) -> the message as Telegram would return it; deleted ones leave.
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    commands: list[dict[str, str]] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._file_ids = itertools.count(1)
        self._files: dict[str, StoredFile] = {}
        self._chats: dict[int, dict[str, Any]] = {}
        self._failures: dict[str, _Failure] = {}
        self.faults: list[Fault] = []
        self._open_queries: set[str] = set()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    # ---- server lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        # A port chosen before the server existed (a bot started before its network),
        # or a free one.
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # ---- what tests call --------------------------------------------------------------

    def mark(self) -> int:
        """A position in the call log: later waits look only at calls after it."""
        return len(self.calls)

    def fail_next(
        self, method: str, times: int = 1, *, status: int = 429, retry_after: int = 1
    ) -> None:
        """Answer the next `times` calls of `method` with 429 (+ retry_after) or `status`
        (502: a proxy's HTML page; 400 and others: a Bot API error).
        """
        self._failures[method] = _Failure(times, status, retry_after)

    def add_fault(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def calls_of(self, method: str, *, since: int = 0, chat_id: int | None = None) -> list[ApiCall]:
        return [
            call
            for call in self.calls[since:]
            if call.method == method
            and call.refused is None
            and (chat_id is None or call.chat_id == chat_id)
        ]

    async def next_call(
        self,
        method: str,
        *,
        since: int,
        chat_id: int | None = None,
        where: Callable[[ApiCall], bool] = lambda call: True,
        timeout: float = 30.0,
    ) -> ApiCall:
        """The first successful call of `method` after `since`, waiting for it if needed."""
        calls = await self.wait_for_calls(
            method, 1, since=since, chat_id=chat_id, where=where, timeout=timeout
        )
        return calls[0]

    async def wait_for_calls(
        self,
        method: str,
        count: int,
        *,
        since: int,
        chat_id: int | None = None,
        where: Callable[[ApiCall], bool] = lambda call: True,
        timeout: float = 30.0,
    ) -> list[ApiCall]:
        """The first `count` successful calls of `method` after `since` (waits for them)."""

        def found() -> list[ApiCall]:
            return [c for c in self.calls_of(method, since=since, chat_id=chat_id) if where(c)]

        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: len(found()) >= count), timeout
                )
            except TimeoutError:
                seen = [c.method for c in self.calls[since:]]
                raise AssertionError(
                    f"not {count} x {method} within {timeout} s; calls since: {seen}"
                ) from None
            return found()[:count]

    def current(self, message: dict[str, Any]) -> dict[str, Any]:
        """The message as the chat shows it now (after edits), or as given if deleted."""
        return self.messages.get((message["chat"]["id"], message["message_id"]), message)

    def chat_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The messages a chat shows now, oldest first."""
        found = [m for (chat, _), m in self.messages.items() if chat == chat_id]
        return sorted(found, key=lambda m: m["message_id"])

    def private_chat(self, user: dict[str, Any]) -> dict[str, Any]:
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        self._chats[chat["id"]] = chat
        return chat

    def group_chat(self, chat_id: int, title: str = "Painters") -> dict[str, Any]:
        chat = {"id": chat_id, "type": "supergroup", "title": title}
        self._chats[chat_id] = chat
        return chat

    async def send_text(
        self,
        user: dict[str, Any],
        chat: dict[str, Any],
        text: str,
        *,
        reply_to: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        message = self._user_message(user, chat, reply_to)
        message["text"] = text
        if entities := command_entities(text):
            message["entities"] = entities
        await self._push_update({"message": message})
        return message

    async def send_photo(
        self,
        user: dict[str, Any],
        chat: dict[str, Any],
        data: bytes,
        *,
        caption: str = "",
        declared_size: int | None = None,
        reply_to: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        file_id = self.add_file(data, declared_size=declared_size)
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
        message = self._user_message(user, chat, reply_to)
        size = self._files[file_id].size
        message["photo"] = [photo_size(file_id, width, height, size)]
        add_caption(message, caption)
        await self._push_update({"message": message})
        return message

    async def send_document(
        self,
        user: dict[str, Any],
        chat: dict[str, Any],
        data: bytes,
        *,
        file_name: str,
        mime_type: str,
        caption: str = "",
        declared_size: int | None = None,
        reply_to: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        file_id = self.add_file(data, declared_size=declared_size, ext=file_name.rsplit(".")[-1])
        message = self._user_message(user, chat, reply_to)
        message["document"] = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": self._files[file_id].size,
        }
        add_caption(message, caption)
        await self._push_update({"message": message})
        return message

    async def click(self, user: dict[str, Any], message: dict[str, Any], data: str) -> str:
        """Press an inline button of a bot message; returns the callback query id."""
        query_id = f"cq-{next(self._update_ids)}"
        query = {
            "id": query_id,
            "from": user,
            "message": self.current(message),
            "chat_instance": str(message["chat"]["id"]),
            "data": data,
        }
        self._open_queries.add(query_id)
        await self._push_update({"callback_query": query})
        return query_id

    def _user_message(
        self, user: dict[str, Any], chat: dict[str, Any], reply_to: dict[str, Any] | None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
        }
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        self.messages[(chat["id"], message["message_id"])] = message
        return message

    async def _push_update(self, body: dict[str, Any]) -> None:
        async with self._changed:
            self._updates.append({"update_id": next(self._update_ids), **body})
            self._changed.notify_all()

    # ---- the HTTP side ----------------------------------------------------------------

    async def _handle_method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        files: dict[str, UploadedFile] = {}
        failure = self._failures.get(method)
        fault: Fault | None = None
        try:
            params, files = await _read_params(request)
            if failure is not None and failure.remaining > 0:
                failure.remaining -= 1
                if failure.status == 429:
                    raise ApiRefusal(429, "Too Many Requests", failure.retry_after)
                raise ApiRefusal(failure.status, f"Error {failure.status}: failing on purpose")
            fault = next((f for f in self.faults if f.method == method and f.where(params)), None)
            if fault is not None:
                fault.hits += 1
                if fault.refuse == 429:
                    raise ApiRefusal(429, "Too Many Requests", fault.retry_after)
                if fault.refuse is not None:
                    raise ApiRefusal(fault.refuse, f"Error {fault.refuse}: failing on purpose")
            handler = getattr(self, f"_api_{method}", None)
            if handler is None:
                raise ApiRefusal(404, "Not Found: method not found")
            result = await handler(params, files)
        except ApiRefusal as refusal:
            await self._record(ApiCall(method, params, files, None, refusal.status))
            return _error(refusal.status, refusal.description, refusal.retry_after)
        if method != "getUpdates" or result:
            # A snapshot: later edits of the same message must not rewrite history.
            await self._record(ApiCall(method, params, files, copy.deepcopy(result)))
        if fault is not None and fault.answer_after is not None:
            await asyncio.sleep(fault.answer_after)  # done, but the answer is late
        return web.json_response({"ok": True, "result": result})

    async def _record(self, call: ApiCall) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _handle_download(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        for stored in self._files.values():
            if stored.path == path:
                return web.Response(body=stored.data)
        return web.Response(status=404)


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    params: dict[str, Any] = {}
    files: dict[str, UploadedFile] = {}
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            files[key] = UploadedFile(value.filename, value.content_type, value.file.read())
        elif key in _JSON_FIELDS:
            params[key] = json.loads(value)
        elif key in _INT_FIELDS:
            if not value.lstrip("-").isdigit():
                raise ApiRefusal(400, f"Bad Request: {key} must be an integer")
            params[key] = int(value)
        else:
            params[key] = value
    return params, files


def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    if status == 502:
        return web.Response(status=502, text="<html>502 Bad Gateway</html>")
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["description"] = f"Too Many Requests: retry after {retry_after}"
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)
