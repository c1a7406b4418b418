"""The data every layer passes around: who asks, what they asked for, the job and its
pictures, and the message still owed to its owner.

Plain dataclasses with no behaviour beyond (de)serialising, so the store, the job
core, the commands and the adapters can all use them without importing each other.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field
from typing import Any, Literal

RequestKind = Literal["imagine", "vary", "avatar", "upscale", "plot", "inpaint", "zoom", "pan"]


@dataclass(frozen=True)
class Caller:
    """Who sent a command.

    `is_admin` is a configured admin: everywhere, for everything. A Discord guild's
    Administrator (when the config allows it) is `guild_admin` of `place` only: they
    may cancel jobs and see the queue of that guild, nothing global.
    """

    platform: str  # "discord" | "telegram" | "cli"
    user_id: str
    name: str
    is_admin: bool = False
    # Where the command was typed, as far as admin rights go: "discord:guild:123", or
    # None where nobody but configured admins moderates (DMs, Telegram chats).
    place: str | None = None
    guild_admin: bool = False

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.user_id}"

    def moderates(self, place: str | None) -> bool:
        """May act on other people's jobs made in `place`."""
        return self.is_admin or (self.guild_admin and place is not None and place == self.place)


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    # Painted and saved; the result is on its way to the chat (see `OutboxEntry`).
    DELIVERING = "delivering"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # A /plot's grid: never queued itself, waiting for its cells (jobs of their own).
    PLOTTING = "plotting"

    @property
    def finished(self) -> bool:
        """Out of the queue for good: nothing will paint it again."""
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PLOTTING)

    @property
    def painted(self) -> bool:
        return self in (JobStatus.DELIVERING, JobStatus.DONE)


@dataclass(frozen=True)
class GenerationRequest:
    """Everything needed to run a job again, after variant expansion and validation."""

    kind: RequestKind
    prompt: str
    negative: str
    model: str
    seed: int
    steps: int
    cfg: float
    width: int
    height: int
    sampler: str
    count: int = 1
    # img2img input, stored under the data folder (relative path); None for text2img.
    init_image: str | None = None
    strength: float | None = None
    # Inpaint mask (white = repaint) under the data folder; None: no mask.
    mask_image: str | None = None
    # An upscale's factor (2 for ⬆️): the input is enlarged by [upscale] model, then
    # painted over at `strength` (0: not at all). None for other jobs, and for upscales
    # queued before there was an upscaler (they stay a plain img2img).
    upscale: float | None = None
    # The job and picture index this one was made from (re-roll, vary, upscale).
    parent_job: str | None = None
    parent_index: int | None = None
    # The user named the model: an admin's /model switch does not move this job.
    model_given: bool = False
    # What the user should know about how it is painted (say, a negative prompt the
    # model ignores), shown with the reply.
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GenerationRequest:
        values = json.loads(text)
        # Fields a newer version wrote are dropped rather than refused: a downgrade
        # should not make stored jobs unreadable.
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in values.items() if name in known})


@dataclass(frozen=True)
class UserSettings:
    """A user's own defaults (`/settings`), used where a command does not say otherwise."""

    aspect: str | None = None  # "3:2"; None: the model's native shape
    steps: int | None = None  # None: the model's default
    sampler: str | None = None  # None: the model's default
    negative: str = ""  # added to the negative prompt of every job
    remix: bool = False  # buttons that repaint ask for a new prompt first
    dm_results: bool = False  # results go to the user's private chat / DMs


@dataclass(frozen=True)
class ResultImage:
    path: str  # PNG with A1111 metadata, relative to the data folder
    seed: int
    parameters: str
    flagged: bool = False  # the NSFW classifier flagged it (spoiler action)


@dataclass
class Job:
    id: str
    platform: str  # "discord" | "telegram" | "cli"
    user_id: str
    user_name: str
    request: GenerationRequest
    # Where the adapter delivers progress and results (chat id, message id, token...).
    origin: dict[str, Any] = field(default_factory=dict)
    status: JobStatus = JobStatus.QUEUED
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    error: str | None = None
    images: list[ResultImage] = field(default_factory=list)
    # The caller's `place` when it was queued: whose guild admins may moderate it.
    place: str | None = None

    @property
    def user_key(self) -> str:
        return f"{self.platform}:{self.user_id}"


class Delivery(enum.StrEnum):
    """How far the final message of a job got."""

    PENDING = "pending"  # not sent yet, or provably not arrived: (re)send it
    SENDING = "sending"  # a send was under way; if the bot died then, it may have arrived
    UNCERTAIN = "uncertain"  # the platform may have it: never sent again automatically


# A result's pictures, or the notice of a failure ("failed", text: the message) or a
# cancellation ("cancelled", text: "by_admin" when an admin cancelled it).
LetterKind = Literal["result", "failed", "cancelled"]


@dataclass(frozen=True)
class OutboxEntry:
    """A final message owed to a job's owner: its pictures, or a failure/cancel notice.

    Written in the same transaction as the job's final status; deleted once the chat
    has it. What is in the outbox after a restart is sent then.
    """

    job_id: str
    kind: LetterKind
    text: str = ""
    state: Delivery = Delivery.PENDING
    attempts: int = 0
    not_before: float = 0.0  # unix time; a 429's retry_after lands here
