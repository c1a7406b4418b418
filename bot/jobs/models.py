"""The job and its events: what the scheduler, the store and the adapters share."""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field
from typing import Any, Literal

RequestKind = Literal["imagine", "vary", "avatar", "upscale"]


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


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
    # The job and picture index this one was made from (re-roll, vary, upscale).
    parent_job: str | None = None
    parent_index: int | None = None
    # The user named the model: a /model switch does not move this job to another.
    model_given: bool = False
    # What the user should know about how it is painted (say, a negative prompt the
    # model ignores), shown with the reply.
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GenerationRequest:
        return cls(**json.loads(text))


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

    @property
    def user_key(self) -> str:
        return f"{self.platform}:{self.user_id}"


@dataclass(frozen=True)
class Queued:
    position: int  # 1 = next to run
    eta_seconds: float | None


@dataclass(frozen=True)
class Started:
    pass


@dataclass(frozen=True)
class Progress:
    step: int
    total: int
    eta_seconds: float | None


@dataclass(frozen=True)
class Finished:
    images: list[ResultImage]


@dataclass(frozen=True)
class Failed:
    message: str  # fit to show the job's owner


@dataclass(frozen=True)
class Cancelled:
    by_admin: bool = False


JobEvent = Queued | Started | Progress | Finished | Failed | Cancelled
