"""Who may queue a job right now, and if not, when they may try again.

The checks are plain functions of what the scheduler knows (queue sizes, the day's
count from the store) plus one token bucket per user, so they are tested with an
injected clock and no sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from bot.config import LimitsConfig

BUSY_MESSAGE = "Atelier is busy right now — try again in a minute."
BUSY_RETRY_AFTER = 60.0
# Buckets that have refilled completely carry no information; drop them past this many.
_MAX_IDLE_BUCKETS = 10_000


@dataclass(frozen=True)
class Refusal:
    message: str  # fit to show the user as it is
    retry_after: float | None  # seconds; None: waiting will not help


@dataclass(frozen=True)
class QueueState:
    """The scheduler's view when someone asks for a job."""

    queue_size: int  # queued + running jobs, everyone's
    user_jobs: int  # queued + running jobs of this user
    # Seconds until this user's earliest job should be done (frees a queue slot);
    # asked only when the user is at the cap.
    user_slot_free_in: Callable[[], float | None]
    images_today: int  # counted by the store, so it survives restarts


@dataclass
class TokenBucket:
    """`capacity` jobs at once, refilled at `per_second`."""

    capacity: float
    per_second: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.per_second)
        self.updated = now

    def wait_for_one(self, now: float) -> float:
        self.refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.per_second

    def take(self, now: float) -> None:
        self.refill(now)
        self.tokens -= 1

    def is_full(self, now: float) -> bool:
        self.refill(now)
        return self.tokens >= self.capacity


class Limits:
    def __init__(
        self,
        config: LimitsConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._clock = clock  # for the buckets: never jumps
        self._wall_clock = wall_clock  # for the daily quota: local midnight
        self._buckets: dict[str, TokenBucket] = {}

    def check(
        self,
        user_key: str,
        *,
        is_admin: bool,
        banned: bool,
        images_wanted: int,
        state: QueueState,
        jobs_wanted: int = 1,
    ) -> Refusal | None:
        """Why `user_key` may not queue `images_wanted` pictures in `jobs_wanted` jobs
        now, or None if they may. Several jobs (a plot's cells) need one free slot of
        the user's own, and room in the whole queue for all of them."""
        config = self.config
        if banned:
            return Refusal("You are banned from Atelier. Ask an admin if this is a mistake.", None)
        if state.queue_size + jobs_wanted > config.max_queue:
            return Refusal(BUSY_MESSAGE, BUSY_RETRY_AFTER)
        if is_admin:
            return None
        if state.user_jobs >= config.max_queued_per_user:
            free_in = state.user_slot_free_in()
            wait = free_in if free_in is not None else 60.0
            return Refusal(
                f"You already have {state.user_jobs} jobs in the queue (the limit is "
                f"{config.max_queued_per_user}). You can queue another picture in "
                f"{format_wait(wait)}.",
                wait,
            )
        wait = self._bucket(user_key).wait_for_one(self._clock())
        if wait > 0:
            return Refusal(
                f"That is more than {config.jobs_per_minute} jobs a minute. "
                f"You can queue another picture in {format_wait(wait)}.",
                wait,
            )
        quota = config.daily_quota
        if quota and state.images_today + images_wanted > quota:
            wait = seconds_until_tomorrow(self._wall_clock())
            left = max(0, quota - state.images_today)
            if left == 0:
                return Refusal(
                    f"You have made your {quota} pictures for today. "
                    f"You can queue more in {format_wait(wait)}.",
                    wait,
                )
            return Refusal(
                f"You have {left} of your {quota} daily pictures left: ask for {left} or "
                f"fewer, or queue more in {format_wait(wait)}.",
                wait,
            )
        return None

    def record(self, user_key: str, *, is_admin: bool = False) -> None:
        """Count an accepted job against the user's per-minute rate."""
        if is_admin:
            return
        now = self._clock()
        self._bucket(user_key).take(now)
        if len(self._buckets) > _MAX_IDLE_BUCKETS:
            self._buckets = {k: b for k, b in self._buckets.items() if not b.is_full(now)}

    def _bucket(self, user_key: str) -> TokenBucket:
        bucket = self._buckets.get(user_key)
        if bucket is None:
            per_minute = float(self.config.jobs_per_minute)
            bucket = TokenBucket(per_minute, per_minute / 60.0, per_minute, self._clock())
            self._buckets[user_key] = bucket
        return bucket


def format_wait(seconds: float) -> str:
    """A short, rounded-up duration: `14 s`, `3 min`, `5 h 12 min`."""
    seconds = max(1, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def start_of_day(timestamp: float) -> float:
    """Local midnight before `timestamp`: the daily quota's day starts there."""
    day = dt.datetime.fromtimestamp(timestamp).date()
    return dt.datetime.combine(day, dt.time.min).timestamp()


def day_bounds(timestamp: float) -> tuple[float, float]:
    """The local day holding `timestamp`, as [start, end) unix times."""
    since = start_of_day(timestamp)
    return since, since + seconds_until_tomorrow(since)


def seconds_until_tomorrow(timestamp: float) -> float:
    day = dt.datetime.fromtimestamp(timestamp).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time.min).timestamp() - timestamp


class UserLocks:
    """One request per user at a time, so two quick ones cannot both pass a limit.

    Different users do not wait for each other. A user's lock is dropped once nobody
    holds or waits for it.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, user_key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(user_key, (asyncio.Lock(), 0))
        self._locks[user_key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[user_key]
            if users == 1:
                del self._locks[user_key]
            else:
                self._locks[user_key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
