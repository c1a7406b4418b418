"""What the scheduler tests share: configs on the tiny model, a listener that records
every event, and a bot (store + scheduler) that can be stopped and started again."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from bot.config import (
    Config,
    EngineConfig,
    LimitsConfig,
    ModelConfig,
    SafetyConfig,
    StorageConfig,
)
from bot.jobs.events import Cancelled, Failed, Finished, JobEvent, Progress, Started
from bot.jobs.limits import Limits
from bot.jobs.scheduler import Scheduler
from bot.records import Caller, GenerationRequest, Job
from bot.store import Store
from engine.client import EngineClient

ANN = Caller("telegram", "1", "Ann")
BOB = Caller("telegram", "2", "Bob")
CAT = Caller("discord", "3", "Cat")
ADMIN = Caller("telegram", "99", "Admin", is_admin=True)
# Generous limits, so only the tests about limits meet them.
OPEN_LIMITS = LimitsConfig(jobs_per_minute=1000, max_queued_per_user=100, max_queue=1000)


def make_config(
    data: Path,
    model_dir: Path,
    *,
    max_batch: int = 4,
    limits: LimitsConfig = OPEN_LIMITS,
    nsfw_action: str = "block",
    nsfw_classifier: str = "",
) -> Config:
    model = ModelConfig(source=str(model_dir), default_steps=2, width=64, height=64)
    return Config(
        engine=EngineConfig(default_model="tiny", device="cpu", max_batch=max_batch),
        models={"tiny": model, "tiny2": model},
        limits=limits,
        safety=SafetyConfig(
            nsfw_action=nsfw_action,  # type: ignore[arg-type]
            nsfw_classifier=nsfw_classifier,
        ),
        storage=StorageConfig(path=str(data)),
        base_dir=data.parent,
    )


def request(
    prompt: str = "a red fox", *, steps: int = 2, count: int = 1, **changes: object
) -> GenerationRequest:
    values: dict[str, object] = {
        "kind": "imagine",
        "prompt": prompt,
        "negative": "",
        "model": "tiny",
        "seed": 7,
        "steps": steps,
        "cfg": 7.0,
        "width": 64,
        "height": 64,
        "sampler": "Euler a",
        "count": count,
    }
    values.update(changes)
    return GenerationRequest(**values)  # type: ignore[arg-type]


ENDINGS = (Finished, Failed, Cancelled)


class Recorder:
    """A listener that keeps every event, and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[tuple[str, JobEvent]] = []
        self.times: list[float] = []  # when each event arrived (monotonic)
        self._changed = asyncio.Event()

    async def __call__(self, job: Job, event: JobEvent) -> None:
        self.events.append((job.id, event))
        self.times.append(time.monotonic())
        self._changed.set()

    def arrivals(self, job_id: str, kind: type) -> list[float]:
        return [
            at
            for at, (jid, event) in zip(self.times, self.events, strict=True)
            if jid == job_id and isinstance(event, kind)
        ]

    def of(self, job_id: str) -> list[JobEvent]:
        return [event for jid, event in self.events if jid == job_id]

    def ending(self, job_id: str) -> JobEvent | None:
        return next((e for e in reversed(self.of(job_id)) if isinstance(e, ENDINGS)), None)

    def started(self) -> list[str]:
        return [jid for jid, event in self.events if isinstance(event, Started)]

    def count(self, job_id: str, kind: type) -> int:
        return sum(isinstance(event, kind) for event in self.of(job_id))

    async def wait(self, predicate: Callable[[], bool], timeout: float = 90.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def until_ended(self, *job_ids: str, timeout: float = 90.0) -> None:
        await self.wait(lambda: all(self.ending(j) is not None for j in job_ids), timeout)

    async def until_progress(self, job_id: str, times: int = 1) -> None:
        await self.wait(lambda: self.count(job_id, Progress) >= times)


@dataclasses.dataclass
class Bot:
    config: Config
    engine: EngineClient
    recorder: Recorder
    limits: Limits | None = None
    store: Store | None = None
    scheduler: Scheduler | None = None

    @property
    def db_path(self) -> Path:
        return self.config.data_dir / "atelier.sqlite3"

    async def open(self, *, start: bool = True, listen: bool = True) -> Scheduler:
        self.store = await Store.open(self.db_path)
        self.scheduler = Scheduler(self.config, self.store, self.engine, limits=self.limits)
        for platform in ("telegram", "discord") if listen else ():
            self.scheduler.add_listener(platform, self.recorder)
        if start:
            await self.scheduler.start()
        return self.scheduler

    async def close(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None
        if self.store is not None:
            await self.store.close()
            self.store = None

    async def restart(self) -> Scheduler:
        await self.close()
        return await self.open()
