"""What a chat platform must do for the delivery layer, and how it says a send failed.

Each adapter implements `Sender` with its platform's calls; everything else about
delivering (ordering, throttling, the outbox, retries, what to do when a send may or
may not have arrived) is the `Courier`'s, once for both platforms.

The error classes are the retry policy's vocabulary: an adapter maps each platform
error to the one that is *provably* true, and the courier acts on it:
- `NotSent`: the platform did not take the message (refused before reading it, 429,
  5xx, connection refused): sending it again cannot make a duplicate.
- `MaybeSent`: the request went out and no answer came (read time-out, connection
  dropped mid-answer): it may be in the chat, so it is never sent again blindly.
- `Undeliverable`: the platform will never take it (the bot was removed from the
  chat, the message is malformed): giving up is the only option.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bot.commands.base import Button
from bot.records import Job


class NotSent(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class MaybeSent(Exception):
    pass


class Undeliverable(Exception):
    pass


@dataclass(frozen=True)
class ResultLetter:
    """A finished job's pictures and how to present them."""

    job: Job
    pictures: list[bytes] = field(repr=False)  # PNG files, one per `job.images`
    caption: str
    buttons: list[list[Button]]


class Sender(Protocol):
    # Sending the same final message twice shows it once (an edit in place, or a
    # platform-side nonce), so a send that a crash cut off may simply be repeated.
    resend_is_safe: bool

    # Seconds between live preview pictures in one chat (or group), whatever job they
    # belong to: the platform's limit on edits there.
    preview_interval: float

    async def show_status(self, job: Job, text: str) -> None:
        """Show or update the job's status line; transient, may be skipped."""

    async def show_preview(self, job: Job, text: str, picture: bytes) -> None:
        """The status line with a live preview (a small JPEG) of the picture so far;
        transient, may be skipped. Later `show_status` calls keep the picture."""

    def status_chat(self, job: Job) -> str:
        """The chat (or group) the job's status is in, for the per-chat preview budget."""

    async def send_result(self, letter: ResultLetter) -> None:
        """Put the pictures in the chat, replacing the status line."""

    async def send_notice(self, job: Job, text: str, buttons: list[list[Button]]) -> None:
        """A final word without pictures (failed, cancelled, not confirmed)."""
