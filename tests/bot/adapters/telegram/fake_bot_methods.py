"""The Bot API methods of the fake server, with the checks real Telegram makes.

Mixed into `FakeBotApi`; each `_api_<method>` takes the decoded form parameters and
uploaded files and returns the `result` Telegram would, or raises `ApiRefusal`.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import time
from dataclasses import dataclass
from typing import Any

from PIL import Image

TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
_CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}


class ApiRefusal(Exception):
    """An error answer, shaped like Telegram's."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class StoredFile:
    data: bytes
    size: int
    path: str


class BotApiMethods:
    """State the methods share lives on the server object; see `FakeBotApi.__post_init__`."""

    bot_id: int
    bot_username: str
    messages: dict[tuple[int, int], dict[str, Any]]
    commands: list[dict[str, str]]
    _updates: list[dict[str, Any]]
    _message_ids: itertools.count
    _file_ids: itertools.count
    _files: dict[str, StoredFile]
    _chats: dict[int, dict[str, Any]]
    _open_queries: set[str]
    _changed: asyncio.Condition

    @property
    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Atelier",
            "username": self.bot_username,
        }

    def add_file(self, data: bytes, *, declared_size: int | None = None, ext: str = "jpg") -> str:
        """Keep a file users can send; `declared_size` lies about its size like a huge file."""
        number = next(self._file_ids)
        file_id = f"file-{number}"
        path = f"documents/file_{number}.{ext}"
        self._files[file_id] = StoredFile(data, declared_size or len(data), path)
        return file_id

    async def _api_getMe(self, params: dict, files: dict) -> dict[str, Any]:
        return {**self.bot_user, "can_join_groups": True, "supports_inline_queries": False}

    async def _api_deleteWebhook(self, params: dict, files: dict) -> bool:
        return True

    async def _api_setMyCommands(self, params: dict, files: dict) -> bool:
        for command in params["commands"]:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command["command"]):
                raise ApiRefusal(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(command["description"]) <= 256:
                raise ApiRefusal(400, "Bad Request: command description is invalid")
        self.commands = params["commands"]
        return True

    async def _api_getUpdates(self, params: dict, files: dict) -> list[dict[str, Any]]:
        offset = params.get("offset", 0)
        limit = params.get("limit", 100)
        async with self._changed:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            if not self._updates and params.get("timeout", 0) > 0:
                try:
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: bool(self._updates)), params["timeout"]
                    )
                except TimeoutError:
                    return []
            return self._updates[:limit]

    async def _api_sendMessage(self, params: dict, files: dict) -> dict[str, Any]:
        _check_text(params.get("text", ""))
        message = self._bot_message(params)
        message["text"] = params["text"]
        return message

    async def _api_editMessageText(self, params: dict, files: dict) -> dict[str, Any]:
        message = self._editable(params)
        if "text" not in message:
            raise ApiRefusal(400, "Bad Request: there is no text in the message to edit")
        _check_text(params.get("text", ""))
        markup = params.get("reply_markup")
        _check_markup(markup)
        if message.get("text") == params["text"] and message.get("reply_markup") == markup:
            raise ApiRefusal(400, "Bad Request: message is not modified")
        message["text"] = params["text"]
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        return message

    async def _api_editMessageReplyMarkup(self, params: dict, files: dict) -> dict[str, Any]:
        message = self._editable(params)
        markup = params.get("reply_markup")
        _check_markup(markup)
        if message.get("reply_markup") == markup:
            raise ApiRefusal(400, "Bad Request: message is not modified")
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        return message

    async def _api_editMessageCaption(self, params: dict, files: dict) -> dict[str, Any]:
        message = self._editable(params)
        if not _has_media(message):
            raise ApiRefusal(400, "Bad Request: there is no caption in the message to edit")
        caption = params.get("caption", "")
        _check_caption(caption)
        markup = params.get("reply_markup")
        _check_markup(markup)
        if message.get("caption", "") == caption and message.get("reply_markup") == markup:
            raise ApiRefusal(400, "Bad Request: message is not modified")
        message.pop("caption", None)
        message.pop("caption_entities", None)
        add_caption(message, caption)
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        return message

    async def _api_editMessageMedia(self, params: dict, files: dict) -> dict[str, Any]:
        """Only a message with media can change it (a text message cannot gain any)."""
        message = self._editable(params)
        if not _has_media(message):
            raise ApiRefusal(400, "Bad Request: there is no media in the message to edit")
        media = params.get("media") or {}
        if media.get("type") != "photo":
            raise ApiRefusal(400, "Bad Request: unsupported media type")
        caption = media.get("caption", "")
        _check_caption(caption)
        markup = params.get("reply_markup")
        _check_markup(markup)
        data = _uploaded({"photo": media.get("media")}, files, "photo").data
        file_id = self.add_file(data)
        for kind in ("photo", "document", "caption", "caption_entities", "reply_markup"):
            message.pop(kind, None)
        message["photo"] = [photo_size(file_id, *_image_size(data), len(data))]
        message["edit_date"] = int(time.time())
        add_caption(message, caption)
        if markup:
            message["reply_markup"] = markup
        return message

    async def _api_deleteMessage(self, params: dict, files: dict) -> bool:
        self._existing(params, "message to delete not found")
        del self.messages[(params["chat_id"], params["message_id"])]
        return True

    async def _api_sendChatAction(self, params: dict, files: dict) -> bool:
        self._chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise ApiRefusal(400, "Bad Request: wrong parameter action in request")
        return True

    async def _api_answerCallbackQuery(self, params: dict, files: dict) -> bool:
        query_id = params.get("callback_query_id")
        if query_id not in self._open_queries:
            raise ApiRefusal(400, "Bad Request: query is too old or query ID is invalid")
        if len(params.get("text", "")) > 200:
            raise ApiRefusal(400, "Bad Request: MESSAGE_TOO_LONG")
        self._open_queries.discard(query_id)
        return True

    async def _api_sendPhoto(self, params: dict, files: dict) -> dict[str, Any]:
        data = _uploaded(params, files, "photo").data
        _check_caption(params.get("caption", ""))
        message = self._bot_message(params)
        file_id = self.add_file(data)
        message["photo"] = [photo_size(file_id, *_image_size(data), len(data))]
        add_caption(message, params.get("caption", ""))
        return message

    async def _api_sendDocument(self, params: dict, files: dict) -> dict[str, Any]:
        upload = _uploaded(params, files, "document")
        _check_caption(params.get("caption", ""))
        message = self._bot_message(params)
        file_id = self.add_file(upload.data, ext="png")
        message["document"] = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_name": upload.filename,
            "mime_type": upload.content_type,
            "file_size": len(upload.data),
        }
        add_caption(message, params.get("caption", ""))
        return message

    async def _api_sendMediaGroup(self, params: dict, files: dict) -> list[dict[str, Any]]:
        media = params["media"]
        if not 2 <= len(media) <= 10:
            raise ApiRefusal(400, "Bad Request: wrong number of media in the album")
        for item in media:
            _check_caption(item.get("caption", ""))
        group_id = f"album-{next(self._file_ids)}"
        sent = []
        for item in media:
            data = _uploaded({"photo": item["media"]}, files, "photo").data
            message = self._bot_message(params)
            file_id = self.add_file(data)
            message["photo"] = [photo_size(file_id, *_image_size(data), len(data))]
            message["media_group_id"] = group_id
            add_caption(message, item.get("caption", ""))
            sent.append(message)
        return sent

    async def _api_getFile(self, params: dict, files: dict) -> dict[str, Any]:
        stored = self._files.get(params["file_id"])
        if stored is None:
            raise ApiRefusal(400, "Bad Request: invalid file_id")
        if stored.size > TELEGRAM_DOWNLOAD_LIMIT:
            raise ApiRefusal(400, "Bad Request: file is too big")
        return {
            "file_id": params["file_id"],
            "file_unique_id": f"u{params['file_id']}",
            "file_size": stored.size,
            "file_path": stored.path,
        }

    def _chat(self, params: dict) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        chat = self._chats.get(chat_id)  # type: ignore[arg-type]
        if chat is None:
            if isinstance(chat_id, int) and chat_id > 0:
                # A user's private chat, which they never started: bots may not begin one.
                raise ApiRefusal(403, "Forbidden: bot can't initiate conversation with a user")
            raise ApiRefusal(400, "Bad Request: chat not found")
        return chat

    def _existing(self, params: dict, missing: str) -> dict[str, Any]:
        self._chat(params)
        message = self.messages.get((params["chat_id"], params.get("message_id")))
        if message is None:
            raise ApiRefusal(400, f"Bad Request: {missing}")
        return message

    def _editable(self, params: dict) -> dict[str, Any]:
        message = self._existing(params, "message to edit not found")
        if message["from"]["id"] != self.bot_id:
            raise ApiRefusal(400, "Bad Request: message can't be edited")
        return message

    def _bot_message(self, params: dict) -> dict[str, Any]:
        chat = self._chat(params)
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": self.bot_user,
        }
        reply = params.get("reply_parameters") or {}
        reply_to = reply.get("message_id") or params.get("reply_to_message_id")
        if reply_to is not None and (chat["id"], reply_to) in self.messages:
            message["reply_to_message"] = self.messages[(chat["id"], reply_to)]
        elif reply_to is not None and not reply.get("allow_sending_without_reply"):
            raise ApiRefusal(400, "Bad Request: message to be replied not found")
        markup = params.get("reply_markup")
        _check_markup(markup)
        if markup and "inline_keyboard" in markup:
            # A message shows only an inline keyboard; ForceReply and reply keyboards
            # act on the user's client and are not part of the message Telegram returns.
            message["reply_markup"] = markup
        self.messages[(chat["id"], message["message_id"])] = message
        return message


def _uploaded(params: dict, files: dict[str, UploadedFile], name: str) -> UploadedFile:
    reference = params.get(name)
    if isinstance(reference, str) and reference.startswith("attach://"):
        name = reference.removeprefix("attach://")
    if name not in files:
        raise ApiRefusal(400, f"Bad Request: there is no {name} in the request")
    return files[name]


def _has_media(message: dict[str, Any]) -> bool:
    return any(kind in message for kind in ("photo", "document", "video", "animation", "audio"))


def _check_text(text: str) -> None:
    if not text.strip():
        raise ApiRefusal(400, "Bad Request: message text is empty")
    if _utf16_length(text) > 4096:
        raise ApiRefusal(400, "Bad Request: message is too long")


def _check_markup(markup: dict[str, Any] | None) -> None:
    if markup and "force_reply" in markup:
        # ForceReply: `force_reply` must be True, the placeholder 1-64 characters.
        if markup["force_reply"] is not True:
            raise ApiRefusal(400, "Bad Request: force_reply must be True")
        if not 0 < len(markup.get("input_field_placeholder", "x")) <= 64:
            raise ApiRefusal(400, "Bad Request: input field placeholder is too long")
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            if len(button.get("callback_data", "").encode()) > 64:
                raise ApiRefusal(400, "Bad Request: BUTTON_DATA_INVALID")
            if not button.get("text"):
                raise ApiRefusal(400, "Bad Request: text buttons are unallowed")


def _check_caption(caption: str) -> None:
    if _utf16_length(caption) > 1024:
        raise ApiRefusal(400, "Bad Request: message caption is too long")


def _utf16_length(text: str) -> int:
    """Telegram counts lengths in UTF-16 code units: most emoji count twice."""
    return len(text.encode("utf-16-le")) // 2


def add_caption(message: dict[str, Any], caption: str) -> None:
    if caption:
        message["caption"] = caption
        if entities := command_entities(caption):
            message["caption_entities"] = entities


def command_entities(text: str) -> list[dict[str, Any]]:
    """Telegram marks a leading `/command` (or `/command@Bot`) as a bot_command entity."""
    match = re.match(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,32})?", text)
    if not match:
        return []
    return [{"type": "bot_command", "offset": 0, "length": match.end()}]


def photo_size(file_id: str, width: int, height: int, size: int) -> dict[str, Any]:
    return {
        "file_id": file_id,
        "file_unique_id": f"u{file_id}",
        "width": width,
        "height": height,
        "file_size": size,
    }


def _image_size(data: bytes) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except OSError:
        # What Telegram answers for a "photo" it cannot decode.
        raise ApiRefusal(400, "Bad Request: IMAGE_PROCESS_FAILED") from None
