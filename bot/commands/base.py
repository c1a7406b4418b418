"""The platform-neutral vocabulary every command speaks: who asked, what they sent,
and what to answer. Adapters translate platform events into these and back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.records import Caller

if TYPE_CHECKING:
    from bot.records import Job
    from bot.services import Services


@dataclass(frozen=True)
class ImageInput:
    """An attachment the user sent. The size is checked before `download` is called."""

    filename: str
    size: int | None  # bytes, as the platform reports it
    content_type: str | None
    download: Callable[[], Awaitable[bytes]] = field(repr=False)


@dataclass(frozen=True)
class Context:
    services: Services
    caller: Caller
    # Delivery info stored with any job this command queues (chat id, message id...).
    origin: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Button:
    label: str  # emoji and a word, e.g. "🔁 Re-roll"
    data: str  # custom_id / callback_data, at most 64 bytes


@dataclass(frozen=True)
class Menu:
    """Pick one of `options` (a panel's setting). Discord shows a select; Telegram a
    button (`open`) that puts the options in place of the keyboard, with `back`."""

    title: str  # emoji and a word, e.g. "📐 Aspect"
    options: list[Button]  # each choice's label, and the data that picks it
    chosen: int | None  # index of the current choice
    open: str  # data that shows the options (Telegram)
    back: str  # data back to the whole panel (Telegram)
    expanded: bool = False  # Telegram: show the options now


@dataclass(frozen=True)
class Reply:
    text: str
    error: bool = False  # a refusal: Discord shows it ephemerally
    buttons: list[list[Button]] = field(default_factory=list)
    # For the caller's eyes only (other people's prompts, say): ephemeral on Discord;
    # on Telegram sent to the caller's private chat, with a pointer in a group.
    private: bool = False
    # Pick-one settings shown above `buttons` (a /settings panel).
    menus: list[Menu] = field(default_factory=list)


@dataclass(frozen=True)
class JobAccepted:
    job: Job
    position: int
    eta_seconds: float | None
    text: str  # e.g. "⏳ Queued: position 2, about 40 s"


@dataclass(frozen=True)
class SendFile:
    path: Path
    filename: str


@dataclass(frozen=True)
class DeleteResult:
    """The owner (or an admin) asked to delete a result message."""

    job_id: str


Outcome = Reply | JobAccepted | SendFile | DeleteResult
