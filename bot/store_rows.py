"""The store's plumbing: commits on the one shared connection, and how records
become rows and back.

Every part of the `Store` writes through `StoreBase._transaction` (or `_write`), so
writes from concurrent tasks never share a transaction.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

import aiosqlite

from bot.records import Delivery, GenerationRequest, Job, JobStatus, OutboxEntry

JOB_COLUMNS = (
    "id, platform, user_id, user_name, origin, request, status, "
    "created_at, started_at, finished_at, attempts, error, place"
)
OUTBOX_COLUMNS = "job_id, kind, text, state, attempts, not_before"


class StoreBase:
    """The connection and the lock that keeps its transactions apart."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        # Writes share one connection: keep their transactions apart.
        self._write_lock = asyncio.Lock()

    def _transaction(self) -> Transaction:
        return Transaction(self._db, self._write_lock)

    async def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        async with self._transaction():
            await self._db.execute(sql, params)


class Transaction:
    """Holds the write lock for one commit; rolls back when the block raises."""

    def __init__(self, db: aiosqlite.Connection, lock: asyncio.Lock) -> None:
        self._db = db
        self._lock = lock

    async def __aenter__(self) -> None:
        await self._lock.acquire()

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                await self._db.commit()
            else:
                await self._db.rollback()
        finally:
            self._lock.release()


def job_row(job: Job) -> tuple[Any, ...]:
    """The job's `JOB_COLUMNS`, in order."""
    return (
        job.id,
        job.platform,
        job.user_id,
        job.user_name,
        json.dumps(job.origin),
        job.request.to_json(),
        job.status.value,
        job.created_at,
        job.started_at,
        job.finished_at,
        job.attempts,
        job.error,
        job.place,
    )


def job_from_row(row: sqlite3.Row | tuple[Any, ...]) -> Job:
    """A job from its `JOB_COLUMNS` (without its pictures)."""
    (job_id, platform, user_id, user_name, origin, request, status, created, started) = row[:9]
    finished, attempts, error, place = row[9:]
    return Job(
        id=job_id,
        platform=platform,
        user_id=user_id,
        user_name=user_name,
        request=GenerationRequest.from_json(request),
        origin=json.loads(origin),
        status=JobStatus(status),
        created_at=created,
        started_at=started,
        finished_at=finished,
        attempts=attempts,
        error=error,
        place=place,
    )


def outbox_row(entry: OutboxEntry) -> tuple[Any, ...]:
    """The entry's `OUTBOX_COLUMNS`, in order."""
    return (
        entry.job_id,
        entry.kind,
        entry.text,
        entry.state.value,
        entry.attempts,
        entry.not_before,
    )


def outbox_from_row(row: sqlite3.Row | tuple[Any, ...]) -> OutboxEntry:
    job_id, kind, text, state, attempts, not_before = row
    return OutboxEntry(job_id, kind, text, Delivery(state), attempts, not_before)
