"""Helpers for command tests: callers, contexts, pictures, and waiting for jobs."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from PIL import Image

from bot.commands.base import Caller, Context, ImageInput, JobAccepted
from bot.records import Job, JobStatus
from bot.services import Services

ADMIN_ID = "900"
BLOCKED = ["nude", "gore"]
_user_ids = itertools.count(1000)


@dataclass
class Upload:
    """An attachment whose download the test can watch."""

    data: bytes
    content_type: str | None = "image/png"
    size: int | None = None  # what the platform reports; None: the real size
    size_known: bool = True  # False: the platform does not say
    filename: str = "picture.png"
    downloads: int = field(default=0, init=False)

    def as_input(self) -> ImageInput:
        async def download() -> bytes:
            self.downloads += 1
            return self.data

        size = self.size if self.size is not None else len(self.data)
        return ImageInput(
            self.filename, size if self.size_known else None, self.content_type, download
        )


def png_bytes(width: int, height: int, color: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Harness:
    services: Services

    def user(self, name: str = "ann") -> Context:
        caller = Caller("telegram", str(next(_user_ids)), name)
        return Context(self.services, caller, origin={"chat_id": 1})

    def admin(self) -> Context:
        caller = Caller("telegram", ADMIN_ID, "root", is_admin=True)
        return Context(self.services, caller, origin={"chat_id": 1})

    async def drop(self, outcome: object) -> None:
        """Cancel an accepted job whose request was all the test needed, so the
        engine's time goes to the tests that wait for pictures.
        """
        assert isinstance(outcome, JobAccepted), outcome
        await self.services.scheduler.cancel(outcome.job.id, self.admin().caller)

    async def jobs_of(self, ctx: Context) -> list[Job]:
        """Every job the store holds for this caller, whatever its state."""
        jobs = await self.services.store.jobs_with_status(*JobStatus)
        return [job for job in jobs if job.user_key == ctx.caller.key]

    async def finished(self, job_id: str, timeout: float = 60.0) -> Job:
        deadline = time.monotonic() + timeout
        while True:
            job = await self.services.store.get_job(job_id)
            assert job is not None
            if job.status.finished:
                return job
            assert time.monotonic() < deadline, f"job {job_id} still {job.status}"
            await asyncio.sleep(0.05)

    @asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Jobs submitted in here stay queued: the scheduler is not serving."""
        scheduler = self.services.scheduler
        await scheduler.stop()
        try:
            yield
        finally:
            await scheduler.start()
