from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from bot.config import LimitsConfig
from bot.jobs.limits import (
    BUSY_MESSAGE,
    Limits,
    QueueState,
    UserLocks,
    format_wait,
    seconds_until_tomorrow,
    start_of_day,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def idle(images_today: int = 0, *, queue_size: int = 0, user_jobs: int = 0) -> QueueState:
    return QueueState(
        queue_size=queue_size,
        user_jobs=user_jobs,
        user_slot_free_in=lambda: 40.0,
        images_today=images_today,
    )


def local_timestamp(hour: int, minute: int, second: int = 0) -> float:
    return dt.datetime(2025, 3, 14, hour, minute, second).timestamp()


def accept(limits: Limits, user: str, *, admin: bool = False, state: QueueState | None = None):
    refusal = limits.check(
        user, is_admin=admin, banned=False, images_wanted=1, state=state or idle()
    )
    if refusal is None:
        limits.record(user, is_admin=admin)
    return refusal


def test_jobs_per_minute_allows_a_burst_then_says_when_to_come_back() -> None:
    clock = FakeClock()
    limits = Limits(LimitsConfig(jobs_per_minute=3), clock=clock)
    assert [accept(limits, "telegram:1") for _ in range(3)] == [None, None, None]

    refusal = accept(limits, "telegram:1")
    assert refusal is not None
    assert refusal.retry_after == pytest.approx(20.0)
    assert refusal.message == (
        "That is more than 3 jobs a minute. You can queue another picture in 20 s."
    )

    clock.now += 14
    refusal = accept(limits, "telegram:1")
    assert refusal is not None and refusal.retry_after == pytest.approx(6.0)
    assert "in 6 s" in refusal.message

    clock.now += 6
    assert accept(limits, "telegram:1") is None
    assert accept(limits, "telegram:1") is not None


def test_rate_is_per_user_and_platform() -> None:
    limits = Limits(LimitsConfig(jobs_per_minute=1), clock=FakeClock())
    assert accept(limits, "telegram:1") is None
    assert accept(limits, "telegram:1") is not None
    assert accept(limits, "discord:1") is None
    assert accept(limits, "telegram:2") is None


def test_a_refused_request_costs_no_token() -> None:
    clock = FakeClock()
    limits = Limits(LimitsConfig(jobs_per_minute=1, max_queued_per_user=1), clock=clock)
    assert accept(limits, "t:1", state=idle(user_jobs=1)) is not None
    assert accept(limits, "t:1") is None


def test_queued_jobs_per_user_cap_says_when_a_slot_frees() -> None:
    limits = Limits(LimitsConfig(max_queued_per_user=3), clock=FakeClock())
    refusal = accept(limits, "t:1", state=idle(user_jobs=3))
    assert refusal is not None
    assert refusal.retry_after == 40.0
    assert refusal.message == (
        "You already have 3 jobs in the queue (the limit is 3). "
        "You can queue another picture in 40 s."
    )
    assert accept(limits, "t:1", state=idle(user_jobs=2)) is None


def test_full_queue_is_busy_for_everyone_admins_too() -> None:
    limits = Limits(LimitsConfig(max_queue=10), clock=FakeClock())
    for admin in (False, True):
        refusal = accept(limits, "t:1", admin=admin, state=idle(queue_size=10))
        assert refusal is not None
        assert refusal.message == BUSY_MESSAGE
        assert refusal.retry_after == 60.0


def test_admins_skip_the_rate_the_user_cap_and_the_quota() -> None:
    limits = Limits(
        LimitsConfig(jobs_per_minute=1, max_queued_per_user=1, daily_quota=2), clock=FakeClock()
    )
    for _ in range(5):
        assert accept(limits, "t:9", admin=True, state=idle(images_today=9, user_jobs=4)) is None


def test_banned_users_are_refused_with_no_retry_time() -> None:
    limits = Limits(LimitsConfig(), clock=FakeClock())
    refusal = limits.check("t:1", is_admin=False, banned=True, images_wanted=1, state=idle())
    assert refusal is not None
    assert "banned" in refusal.message
    assert refusal.retry_after is None


def test_daily_quota_counts_pictures_and_resets_at_local_midnight() -> None:
    wall = FakeClock(local_timestamp(23, 59, 0))
    limits = Limits(LimitsConfig(daily_quota=5), clock=FakeClock(), wall_clock=wall)

    used_up = limits.check("t:1", is_admin=False, banned=False, images_wanted=1, state=idle(5))
    assert used_up is not None
    assert used_up.retry_after == pytest.approx(60.0)
    assert used_up.message == (
        "You have made your 5 pictures for today. You can queue more in 1 min."
    )

    too_many = limits.check("t:1", is_admin=False, banned=False, images_wanted=4, state=idle(3))
    assert too_many is not None
    assert "2 of your 5 daily pictures left" in too_many.message

    fits = limits.check("t:1", is_admin=False, banned=False, images_wanted=2, state=idle(3))
    assert fits is None


def test_quota_zero_means_no_quota() -> None:
    limits = Limits(LimitsConfig(daily_quota=0), clock=FakeClock())
    assert accept(limits, "t:1", state=idle(images_today=10_000)) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "1 s"),
        (14, "14 s"),
        (59.5, "1 min"),
        (61, "2 min"),
        (3600, "1 h"),
        (18720, "5 h 12 min"),
    ],
)
def test_waits_are_rounded_up_and_short(seconds: float, text: str) -> None:
    assert format_wait(seconds) == text


def test_day_boundaries_are_local_midnights() -> None:
    noon = local_timestamp(12, 0)
    assert start_of_day(noon) == local_timestamp(0, 0)
    assert seconds_until_tomorrow(local_timestamp(23, 0)) == pytest.approx(3600)


async def test_user_locks_keep_one_user_in_line_and_others_free() -> None:
    locks = UserLocks()
    order: list[str] = []
    release = asyncio.Event()

    async def ask(user: str, name: str, wait: bool) -> None:
        async with locks.hold(user):
            order.append(f"{name} in")
            if wait:
                await release.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(ask("t:1", "ann-1", wait=True))
    second = asyncio.create_task(ask("t:1", "ann-2", wait=False))
    other = asyncio.create_task(ask("t:2", "bob", wait=False))
    await asyncio.sleep(0.01)
    assert order == ["ann-1 in", "bob in", "bob out"]
    release.set()
    await asyncio.gather(first, second, other)
    assert order[3:] == ["ann-1 out", "ann-2 in", "ann-2 out"]
    assert len(locks) == 0
