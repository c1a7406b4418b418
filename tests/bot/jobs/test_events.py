from __future__ import annotations

import asyncio

from bot.commands.render import status_text
from bot.jobs.events import (
    PROGRESS_INTERVAL,
    QUEUED_INTERVAL,
    Downloading,
    EventHub,
    Finished,
    JobEvent,
    Progress,
    Queued,
    Started,
)
from bot.records import Job
from tests.bot.jobs.scheduler_harness import Recorder, request


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def job(job_id: str = "job1", platform: str = "telegram") -> Job:
    return Job(id=job_id, platform=platform, user_id="1", user_name="Ann", request=request())


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_progress_at_most_every_two_seconds_and_always_the_last_step() -> None:
    clock = FakeClock()
    hub = EventHub(clock)
    recorder = Recorder()
    hub.add_listener("telegram", recorder)
    for step in range(1, 11):
        hub.progress(job(), step, 10, eta=None)
        clock.now += 0.5
    await settle()
    # Steps at 0, 0.5, 1 … 4.5 s: the first, then one per 2 s, then the last.
    assert [e.step for _, e in recorder.events] == [1, 5, 9, 10]  # type: ignore[union-attr]
    assert PROGRESS_INTERVAL == 2.0


async def test_position_updates_are_throttled_and_skip_unchanged_positions() -> None:
    clock = FakeClock()
    hub = EventHub(clock)
    recorder = Recorder()
    hub.add_listener("telegram", recorder)
    assert hub.queued(job(), 3, 30.0, force=True)
    clock.now += 1
    assert hub.queued(job(), 3, 29.0)  # unchanged: nothing to say
    assert not hub.queued(job(), 2, 20.0)  # changed, but too soon: held back
    clock.now += QUEUED_INTERVAL
    assert hub.queued(job(), 2, 20.0)
    hub.forget("job1")
    assert hub.queued(job(), 2, 20.0)  # forgotten: announced again
    await settle()
    assert [e for _, e in recorder.events] == [Queued(3, 30.0), Queued(2, 20.0), Queued(2, 20.0)]


async def test_download_news_is_throttled_per_job_and_reads_as_a_percentage() -> None:
    clock = FakeClock()
    hub = EventHub(clock)
    recorder = Recorder()
    hub.add_listener("telegram", recorder)
    for percent in range(0, 50, 5):  # a report every 0.5 s, 0 % … 45 %
        hub.downloading(job(), Downloading(percent, 90.0))
        hub.downloading(job("job2"), Downloading(percent, 90.0))
        clock.now += 0.5
    await settle()
    assert [e.percent for j, e in recorder.events if j == "job1"] == [0, 20, 40]  # type: ignore[union-attr]
    assert [e.percent for j, e in recorder.events if j == "job2"] == [0, 20, 40]  # type: ignore[union-attr]
    assert status_text(Downloading(43, 90.0)) == (
        "⏳ The model is still downloading (43 %), about 2 min left"
    )
    assert status_text(Downloading(0, None)) == "⏳ The model is still downloading (0 %)"


async def test_events_wait_for_the_first_listener_of_their_platform() -> None:
    hub = EventHub()
    hub.emit(job(), Queued(1, 1.0))
    hub.emit(job(), Started())
    hub.emit(job(), Progress(1, 2, 1.0))  # stale by then: not kept
    hub.emit(job(), Downloading(10, None))  # stale too
    hub.emit(job("job2", "discord"), Started())
    telegram = Recorder()
    hub.add_listener("telegram", telegram)
    await settle()
    assert [e for _, e in telegram.events] == [Queued(1, 1.0), Started()]


async def test_each_listener_gets_events_in_order_without_waiting_for_the_others() -> None:
    hub = EventHub()
    release = asyncio.Event()
    slow_seen: list[JobEvent] = []

    async def slow(job: Job, event: JobEvent) -> None:
        await release.wait()
        slow_seen.append(event)

    async def broken(job: Job, event: JobEvent) -> None:
        raise RuntimeError("listener bug")

    fast = Recorder()
    for listener in (slow, broken, fast):
        hub.add_listener("telegram", listener)
    events = [Queued(1, None), Started(), Finished([])]
    for event in events:
        hub.emit(job(), event)
    await fast.wait(lambda: len(fast.events) == 3, timeout=5)
    assert [e for _, e in fast.events] == events
    assert slow_seen == []
    release.set()
    await hub.flush(timeout=5)
    assert slow_seen == events


async def test_listeners_see_the_job_as_it_was_when_the_event_happened() -> None:
    hub = EventHub()
    seen: list[Job] = []

    async def keep(job: Job, event: JobEvent) -> None:
        seen.append(job)

    hub.add_listener("telegram", keep)
    changing = job()
    hub.emit(changing, Queued(1, None))
    changing.origin["message_id"] = 5
    changing.user_name = "renamed"
    await settle()
    assert seen[0].origin == {} and seen[0].user_name == "Ann"


async def test_flush_gives_up_on_a_stuck_listener() -> None:
    hub = EventHub()

    async def stuck(job: Job, event: JobEvent) -> None:
        await asyncio.Event().wait()

    hub.add_listener("telegram", stuck)
    hub.emit(job(), Started())
    await settle()
    async with asyncio.timeout(5):
        await hub.flush(timeout=0.05)
