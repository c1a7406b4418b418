"""Translation between Telegram objects and Atelier's neutral ones: attachments, keyboards,
and the text that follows a command.
"""

from __future__ import annotations

import io

from PIL import Image
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    ReplyParameters,
)

from bot.commands.base import Button, ImageInput

# Bots may download files up to 20 MB from Telegram's cloud Bot API.
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
# Telegram refuses photos over 10 MB, or whose width and height add up to over 10000.
PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_MAX_SIDES = 10_000
# The largest side Telegram shows a photo at: a smaller copy loses nothing in the chat.
PHOTO_SHOWN_SIDE = 2560


def command_text(message: Message) -> str:
    """What follows `/command` (or `/command@Bot`) in a text or caption, quotes intact."""
    text = message.text or message.caption or ""
    entities = message.entities or message.caption_entities
    if entities and entities[0].type == MessageEntity.BOT_COMMAND and entities[0].offset == 0:
        # The command is ASCII, so its UTF-16 length is its length in characters.
        return text[entities[0].length :].strip()
    return text.strip()


def addressed_to(message: Message, bot_username: str) -> bool:
    """False for `/vary@SomeOtherBot` in a group; plain `/vary` is for everyone."""
    text = message.text or message.caption or ""
    command = text.split(maxsplit=1)[0] if text.strip() else ""
    _, _, target = command.partition("@")
    return not target or target.lower() == bot_username.lower()


def picture_of(message: Message | None, bot: Bot) -> ImageInput | None:
    """The photo or document a message carries, as an ImageInput (size known up front)."""
    if message is None:
        return None
    if message.photo:
        largest = message.photo[-1]
        return _input(bot, largest.file_id, "photo.jpg", largest.file_size, "image/jpeg")
    if message.document:
        document = message.document
        return _input(
            bot,
            document.file_id,
            document.file_name or "file",
            document.file_size,
            document.mime_type,
        )
    return None


def _input(
    bot: Bot, file_id: str, filename: str, size: int | None, content_type: str | None
) -> ImageInput:
    async def download() -> bytes:
        telegram_file = await bot.get_file(file_id)
        return bytes(await telegram_file.download_as_bytearray())

    return ImageInput(filename=filename, size=size, content_type=content_type, download=download)


def over_download_limit(image: ImageInput) -> bool:
    """Telegram itself refuses bots files over 20 MB, whatever Atelier's own limit."""
    return image.size is not None and image.size > TELEGRAM_DOWNLOAD_LIMIT


def keyboard(rows: list[list[Button]]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in rows]
    )


def fit(text: str, limit: int = 4096) -> str:
    """Telegram refuses over-long texts outright; a cut one is better than none."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def replying_to(message_id: int | None) -> ReplyParameters | None:
    """Reply to a message, but still send if the user deleted it meanwhile."""
    if message_id is None:
        return None
    return ReplyParameters(message_id, allow_sending_without_reply=True)


def fit_photo(data: bytes) -> bytes:
    """`data` as it is when Telegram takes it as a photo, else a JPEG at the size
    Telegram shows (a big /plot grid, say); the PNG stays behind the 📄 PNG button.

    Blocking (image decoding): call it in a thread.
    """
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        if len(data) <= PHOTO_MAX_BYTES and width + height <= PHOTO_MAX_SIDES:
            return data
        scale = min(1.0, PHOTO_SHOWN_SIDE / max(width, height))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        smaller = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    smaller.save(out, format="JPEG", quality=90)
    return out.getvalue()
