"""Atelier's SQLite database: users, jobs and their pictures, the outbox, bans,
settings, audit.

One aiosqlite connection in WAL mode with foreign keys on; the schema is brought up
to date at `open` (`bot/migrations`). A job's final status and the message it owes
its owner (`OutboxEntry`) are written in one transaction, so a kill between painting
and delivering loses nothing. Per-user records (/settings, bans, audit) are in
`store_users.py`; transactions and row conversions in `store_rows.py`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import sqlite3
import time
from collections.abc import Iterable
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import aiosqlite

from bot.migrations import SchemaError, default_migrations, migrate
from bot.records import GenerationRequest, Job, JobStatus, OutboxEntry, ResultImage
from bot.store_rows import (
    JOB_COLUMNS,
    OUTBOX_COLUMNS,
    job_from_row,
    job_row,
    outbox_from_row,
    outbox_row,
)
from bot.store_users import AuditEntry, UserRecords

__all__ = ["DB_FILENAME", "AuditEntry", "Store", "StoreError", "default_migrations", "new_job_id"]

DB_FILENAME = "atelier.sqlite3"
# Jobs that count towards a day's quota: made, or about to be.
_QUOTA_STATUSES = (
    JobStatus.QUEUED,
    JobStatus.RUNNING,
    JobStatus.DELIVERING,
    JobStatus.DONE,
)


class StoreError(Exception):
    """The database cannot be used (damaged, or made by a newer Atelier)."""


def new_job_id() -> str:
    """10 random base32 characters: short, and safe in URLs and callback data."""
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii")[:10].lower()


class Store(UserRecords):
    def __init__(self, db: aiosqlite.Connection, path: Path, banned: set[str]) -> None:
        super().__init__(db)
        self.path = path
        # Bans are checked on every command; the store is their only writer, so a copy
        # in memory stays exact.
        self._banned = banned
        # New jobs waiting for the next group commit, and the task writing them.
        self._new_jobs: list[tuple[Job, asyncio.Future[None]]] = []
        self._job_writer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path, *, migrations: Traversable | None = None) -> Store:
        """Open (creating and migrating) the database file `path`.

        `path` may also be a folder, which then holds `atelier.sqlite3`.
        """
        if path.is_dir():
            path = path / DB_FILENAME
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{path}: cannot open the database: {exc}") from exc
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA foreign_keys = ON")
            # Safe with WAL: a power cut may lose the last commits, never corrupt.
            await db.execute("PRAGMA synchronous = NORMAL")
            await migrate(db, migrations or default_migrations())
            async with db.execute("SELECT user_key FROM bans") as cursor:
                banned = {row[0] async for row in cursor}
        except (sqlite3.DatabaseError, SchemaError) as exc:
            await db.close()
            if isinstance(exc, SchemaError):
                raise StoreError(str(exc)) from exc
            raise StoreError(f"{path}: cannot use the database: {exc}") from exc
        return cls(db, path, banned)

    async def close(self) -> None:
        if self._job_writer is not None:
            await self._job_writer
        await self._db.close()

    async def schema_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    # Jobs

    async def add_job(self, job: Job) -> None:
        """Save a new job; returns once it is committed.

        Jobs added while a commit is under way are written together in the next one:
        many users at once cost one transaction, not one each.
        """
        loop = asyncio.get_running_loop()
        saved: asyncio.Future[None] = loop.create_future()
        self._new_jobs.append((job, saved))
        if self._job_writer is None or self._job_writer.done():
            self._job_writer = loop.create_task(self._write_new_jobs())
        await saved

    async def _write_new_jobs(self) -> None:
        while self._new_jobs:
            batch, self._new_jobs = self._new_jobs, []
            try:
                await self._insert_jobs([job for job, _ in batch])
                results: list[Exception | None] = [None] * len(batch)
            except Exception:
                # One bad job must not sink the others: write them one at a time. Any
                # error (not just SQLite's) is handed to its caller; one escaping here
                # would end this task and leave every waiting `add_job` hanging.
                results = []
                for job, _ in batch:
                    try:
                        await self._insert_jobs([job])
                        results.append(None)
                    except Exception as exc:
                        results.append(exc)
            for (_, saved), error in zip(batch, results, strict=True):
                if saved.done():  # the caller stopped waiting
                    continue
                if error is None:
                    saved.set_result(None)
                else:
                    saved.set_exception(error)

    async def _insert_jobs(self, jobs: list[Job]) -> None:
        async with self._transaction():
            await self._insert_rows(jobs)

    async def _insert_rows(self, jobs: list[Job]) -> None:
        now = time.time()
        await self._db.executemany(
            "INSERT INTO users (key, platform, user_id, name, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET name = excluded.name, "
            "last_seen = excluded.last_seen",
            [(j.user_key, j.platform, j.user_id, j.user_name, now, now) for j in jobs],
        )
        await self._db.executemany(
            f"INSERT INTO jobs (user_key, image_count, {JOB_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(j.user_key, j.request.count, *job_row(j)) for j in jobs],
        )
        for job in jobs:
            await self._write_images(job)

    async def get_job(self, job_id: str) -> Job | None:
        jobs = await self._select_jobs("WHERE id = ?", (job_id,))
        return jobs[0] if jobs else None

    async def update_job(self, job: Job) -> None:
        """Save everything that changes over a job's life: status, times, result."""
        async with self._transaction():
            await self._update_job(job)

    async def finish_job(self, job: Job, letter: OutboxEntry | None) -> None:
        """Save the job's final status and the message it owes, as one commit."""
        async with self._transaction():
            await self._update_job(job)
            if letter is not None:
                await self._db.execute(
                    f"INSERT OR REPLACE INTO outbox ({OUTBOX_COLUMNS}, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*outbox_row(letter), time.time()),
                )

    async def jobs_with_status(self, *statuses: JobStatus) -> list[Job]:
        """Jobs in any of `statuses`, oldest first."""
        if not statuses:
            return []
        marks = ", ".join("?" for _ in statuses)
        return await self._select_jobs(
            f"WHERE status IN ({marks}) ORDER BY created_at, rowid",
            tuple(status.value for status in statuses),
        )

    async def set_origin(self, job_id: str, origin: dict[str, Any]) -> None:
        await self._write("UPDATE jobs SET origin = ? WHERE id = ?", (json.dumps(origin), job_id))

    async def update_origin(self, job_id: str, changes: dict[str, Any]) -> None:
        """Merge `changes` into the job's origin; a None value removes that key."""
        await self._write(
            "UPDATE jobs SET origin = json_patch(origin, ?) WHERE id = ?",
            (json.dumps(changes), job_id),
        )

    async def images_today(self, user_key: str, *, since: float, until: float) -> int:
        """Pictures `user_key` asked for between `since` and `until`, not counting
        failed or cancelled jobs."""
        marks = ", ".join("?" for _ in _QUOTA_STATUSES)
        async with self._db.execute(
            "SELECT COALESCE(SUM(image_count), 0) FROM jobs "
            f"WHERE user_key = ? AND created_at >= ? AND created_at < ? AND status IN ({marks})",
            (user_key, since, until, *(status.value for status in _QUOTA_STATUSES)),
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def inputs_in_use(self) -> set[str]:
        """Input pictures of jobs that may still run: retention must keep them."""
        async with self._db.execute(
            "SELECT request FROM jobs WHERE status IN (?, ?)",
            (JobStatus.QUEUED.value, JobStatus.RUNNING.value),
        ) as cursor:
            requests = [GenerationRequest.from_json(row[0]) async for row in cursor]
        paths = {request.init_image for request in requests if request.init_image}
        return paths | {request.mask_image for request in requests if request.mask_image}

    # The outbox

    async def outbox(self) -> list[OutboxEntry]:
        """Every message still owed, oldest first."""
        async with self._db.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY created_at, rowid"
        ) as cursor:
            return [outbox_from_row(row) async for row in cursor]

    async def outbox_entry(self, job_id: str) -> OutboxEntry | None:
        async with self._db.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE job_id = ?", (job_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else outbox_from_row(row)

    async def set_delivery(self, entry: OutboxEntry) -> None:
        """Save how far a delivery got (state, attempts, when to try again)."""
        await self._write(
            "UPDATE outbox SET state = ?, attempts = ?, not_before = ? WHERE job_id = ?",
            (entry.state.value, entry.attempts, entry.not_before, entry.job_id),
        )

    async def delivered(self, job_id: str, error: str | None = None) -> None:
        """The message is out (or given up, with `error`): a painted job is done."""
        async with self._transaction():
            await self._db.execute("DELETE FROM outbox WHERE job_id = ?", (job_id,))
            await self._db.execute(
                "UPDATE jobs SET status = ?, error = COALESCE(?, error) "
                "WHERE id = ? AND status = ?",
                (JobStatus.DONE.value, error, job_id, JobStatus.DELIVERING.value),
            )

    # Plots

    async def add_plot(self, plot: Job, cells: list[Job], axes: str) -> None:
        """Save a /plot's grid job, its cells and its axes (JSON) as one commit. The grid
        job asks for no pictures itself: the quota counts its cells."""
        async with self._transaction():
            await self._insert_rows([plot, *cells])
            await self._db.execute("UPDATE jobs SET image_count = 0 WHERE id = ?", (plot.id,))
            await self._db.execute(
                "INSERT INTO plots (job_id, axes, cells, created_at) VALUES (?, ?, ?, ?)",
                (plot.id, axes, json.dumps([cell.id for cell in cells]), time.time()),
            )

    async def plot(self, job_id: str) -> tuple[str, list[str]] | None:
        """A plot's axes (JSON) and its cells' job ids, row by row."""
        async with self._db.execute(
            "SELECT axes, cells FROM plots WHERE job_id = ?", (job_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else (str(row[0]), list(json.loads(row[1])))

    async def jobs_by_id(self, job_ids: list[str]) -> list[Job]:
        """The jobs with these ids (those that exist), in the order asked."""
        if not job_ids:
            return []
        marks = ", ".join("?" for _ in job_ids)
        found = {j.id: j for j in await self._select_jobs(f"WHERE id IN ({marks})", tuple(job_ids))}
        return [found[job_id] for job_id in job_ids if job_id in found]

    # Settings

    async def get_setting(self, key: str) -> str | None:
        async with self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else str(row[0])

    async def set_setting(self, key: str, value: str) -> None:
        await self._write(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # Helpers

    async def _update_job(self, job: Job) -> None:
        await self._db.execute(
            "UPDATE jobs SET origin = ?, request = ?, status = ?, started_at = ?, "
            "finished_at = ?, attempts = ?, error = ? WHERE id = ?",
            (
                json.dumps(job.origin),
                job.request.to_json(),
                job.status.value,
                job.started_at,
                job.finished_at,
                job.attempts,
                job.error,
                job.id,
            ),
        )
        await self._db.execute("DELETE FROM job_images WHERE job_id = ?", (job.id,))
        await self._write_images(job)

    async def _write_images(self, job: Job) -> None:
        if job.images:
            await self._db.executemany(
                "INSERT INTO job_images (job_id, idx, path, seed, parameters, flagged) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (job.id, index, image.path, image.seed, image.parameters, int(image.flagged))
                    for index, image in enumerate(job.images)
                ],
            )

    async def _select_jobs(self, where: str, params: tuple[Any, ...]) -> list[Job]:
        async with self._db.execute(f"SELECT {JOB_COLUMNS} FROM jobs {where}", params) as cursor:
            jobs = [job_from_row(row) async for row in cursor]
        if jobs:
            await self._load_images(jobs)
        return jobs

    async def _load_images(self, jobs: Iterable[Job]) -> None:
        by_id = {job.id: job for job in jobs}
        marks = ", ".join("?" for _ in by_id)
        async with self._db.execute(
            "SELECT job_id, path, seed, parameters, flagged FROM job_images "
            f"WHERE job_id IN ({marks}) ORDER BY job_id, idx",
            tuple(by_id),
        ) as cursor:
            async for job_id, path, seed, parameters, flagged in cursor:
                by_id[job_id].images.append(ResultImage(path, seed, parameters, bool(flagged)))
