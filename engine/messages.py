"""What the bot and the engine process say over their pipe: the whole protocol.

Small picklable dataclasses; nothing here imports torch, so the bot can use them. The
client (engine/client.py) sends the requests and the worker (engine/worker.py) answers
with the replies; a failure crosses as the name of an engine.types error class, which
`reply_value` raises again on the bot's side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine import types as engine_types
from engine.download import DownloadProgress
from engine.types import (
    EngineCrashed,
    EngineError,
    EngineSettings,
    GenerationCancelled,
    ImageSpec,
    ModelLoadError,
)

# The request id of the start-up reply (`Done` with the device, or `Failed`).
STARTUP_REQUEST = 0


# Client -> worker. `Configure` comes first, once.
@dataclass(frozen=True)
class Configure:
    settings: EngineSettings
    max_batch: int
    log_level: int


@dataclass(frozen=True)
class LoadModel:
    request_id: int
    name_or_path: str


@dataclass(frozen=True)
class Generate:
    request_id: int
    job_id: str
    model: str
    specs: list[ImageSpec]


@dataclass(frozen=True)
class Cancel:
    job_id: str


@dataclass(frozen=True)
class Health:
    request_id: int


@dataclass(frozen=True)
class Shutdown:
    pass


# What the main thread works through, one at a time; the reader thread handles the rest.
Work = LoadModel | Generate


# Worker -> client. Every reply says which model is loaded once the request is done.
@dataclass(frozen=True)
class Progress:
    request_id: int
    step: int
    total: int


@dataclass(frozen=True)
class Downloading:
    """The model this request loads is being downloaded (engine/download.py)."""

    request_id: int
    progress: DownloadProgress


@dataclass(frozen=True)
class Preview:
    """Live previews of a running job: picture index in the job -> a small JPEG."""

    request_id: int
    pictures: dict[int, bytes] = field(repr=False)


@dataclass(frozen=True)
class Done:
    request_id: int
    value: object = field(repr=False)
    model: str | None


@dataclass(frozen=True)
class Failed:
    request_id: int
    error: str  # name of an exception class in engine.types
    message: str
    model: str | None


Reply = Progress | Downloading | Preview | Done | Failed

UNEXPECTED_ERROR = "the engine failed unexpectedly; the details are in the bot's log"

_ERRORS: dict[str, type[EngineError]] = {
    cls.__name__: cls for cls in (EngineError, ModelLoadError, GenerationCancelled, EngineCrashed)
}


def error_name(exc: BaseException) -> str:
    """The nearest class in engine.types: the client re-raises that class by name."""
    for cls in type(exc).__mro__:
        if cls.__module__ == engine_types.__name__ and issubclass(cls, EngineError):
            return cls.__name__
    return EngineError.__name__


def reply_value(reply: Done | Failed) -> object:
    """The reply's value, or its error raised again as the same engine.types class."""
    if isinstance(reply, Failed):
        raise _ERRORS.get(reply.error, EngineError)(reply.message)
    return reply.value
