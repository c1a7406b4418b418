"""The status line with live previews: pictures ride on its throttled edits, a chat's
budget spaces them out across jobs, and a new preview passes the progress throttle."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.delivery.status_line import PreviewBudget, StatusLine
from bot.jobs.events import EventHub, Progress
from bot.records import Job
from engine.previews import MAX_SIDE, preview_size
from tests.bot.jobs.scheduler_harness import Recorder, request


class Edits:
    def __init__(self) -> None:
        self.made: list[tuple[float, str, bytes | None]] = []

    async def __call__(self, text: str, preview: bytes | None) -> None:
        self.made.append((asyncio.get_running_loop().time(), text, preview))


async def show(line: StatusLine, edits: Edits, text: str, preview: bytes | None, budget=None):
    async with line.lock:
        await line.show(text, edits, preview, budget)


async def test_a_preview_goes_with_the_next_edit_and_text_edits_keep_it() -> None:
    line, edits = StatusLine(0.05), Edits()
    await show(line, edits, "🎨 Painting… 1/20", None)
    await asyncio.sleep(0.06)
    await show(line, edits, "🎨 Painting… 5/20", b"jpeg-1")
    await asyncio.sleep(0.06)
    await show(line, edits, "🎨 Painting… 9/20", b"jpeg-1")  # the same picture: text only
    await asyncio.sleep(0.06)
    await show(line, edits, "🎨 Painting… 12/20", None)  # none new: the picture stays
    assert [(text, preview) for _, text, preview in edits.made] == [
        ("🎨 Painting… 1/20", None),
        ("🎨 Painting… 5/20", b"jpeg-1"),
        ("🎨 Painting… 9/20", None),
        ("🎨 Painting… 12/20", None),
    ]


async def test_within_the_interval_the_newest_preview_waits_for_the_trailing_edit() -> None:
    line, edits = StatusLine(0.1), Edits()
    await show(line, edits, "a", b"one")
    await show(line, edits, "b", b"two")
    await show(line, edits, "c", b"three")
    await asyncio.sleep(0.15)
    assert [(text, preview) for _, text, preview in edits.made] == [("a", b"one"), ("c", b"three")]
    assert edits.made[1][0] - edits.made[0][0] >= 0.1


async def test_a_chats_budget_spaces_pictures_across_its_jobs() -> None:
    budget = PreviewBudget(0.2)
    first, second = (StatusLine(0.01), Edits()), (StatusLine(0.01), Edits())
    await show(*first, "first job", b"a", budget)
    await show(*second, "second job", b"b", budget)  # same chat, too soon: text only
    assert first[1].made[0][2] == b"a" and second[1].made[0][2] is None
    await asyncio.sleep(0.21)
    await show(*second, "second job, later", b"b", budget)  # its picture, at last
    assert second[1].made[-1][2] == b"b"


async def test_a_new_preview_passes_the_progress_throttle() -> None:
    hub, recorder = EventHub(lambda: 100.0), Recorder()  # the clock stands still
    hub.add_listener("telegram", recorder)
    job = Job(id="j", platform="telegram", user_id="1", user_name="Ann", request=request())
    hub.progress(job, 1, 20, None)
    hub.progress(job, 2, 20, None)  # throttled
    hub.progress(job, 3, 20, None, b"jpeg")  # a new picture: passes
    hub.progress(job, 4, 20, None, b"jpeg")  # the same picture again: throttled
    for _ in range(5):
        await asyncio.sleep(0)
    events = [event for _, event in recorder.events]
    assert all(isinstance(event, Progress) for event in events)
    assert [(e.step, e.preview) for e in events] == [(1, None), (3, b"jpeg")]  # type: ignore[union-attr]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4096), st.integers(1, 4096))
def test_preview_size_fits_keeps_the_aspect_and_never_enlarges(width: int, height: int) -> None:
    w, h = preview_size(width, height)
    assert 1 <= w <= min(width, MAX_SIDE) and 1 <= h <= min(height, MAX_SIDE)
    assert max(w, h) == min(max(width, height), MAX_SIDE)
    # One scale for both sides (the aspect kept), each rounded to a whole pixel.
    scale = min(1.0, MAX_SIDE / max(width, height))
    assert abs(w - width * scale) <= 0.5 or w == 1
    assert abs(h - height * scale) <= 0.5 or h == 1
