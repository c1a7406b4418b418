"""The courier against a real store and a scripted chat platform.

`ScriptedChat` is a stand-in for a platform (it implements the `Sender` protocol the
adapters implement): each send follows a script — arrive, refuse with a 429, answer
too late, or have the bot killed mid-send — and the chat keeps what arrived. Whatever
the script, a picture never arrives twice, and one that never arrived leaves its
owner a way to get it.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.commands.base import Button
from bot.delivery.courier import UNCONFIRMED, Courier
from bot.delivery.sender import MaybeSent, NotSent, ResultLetter, Undeliverable
from bot.jobs.events import EventHub, Failed, Finished, Queued, Started
from bot.jobs.painting import outbox_entry
from bot.records import Job, JobStatus, ResultImage
from bot.store import Store
from tests.bot.jobs.scheduler_harness import request

# What one send does. "killed-*": the bot dies while the request is out, before or
# after the platform took it.
OUTCOMES = ("ok", "429", "5xx", "late-arrived", "late-lost", "killed-before", "killed-after")


class Killed(Exception):
    """The test's stand-in for kill -9 during a send."""


@dataclass
class ScriptedChat:
    resend_is_safe: bool
    script: dict[str, list[str]]  # job id -> outcome of each send, in order
    pictures: Counter[str] = field(default_factory=Counter)  # job id -> arrivals
    notes: list[tuple[str, str, list[list[Button]]]] = field(default_factory=list)
    statuses: list[tuple[str, str]] = field(default_factory=list)
    kill: asyncio.Event = field(default_factory=asyncio.Event)

    preview_interval: float = 1.0

    async def show_status(self, job: Job, text: str) -> None:
        self.statuses.append((job.id, text))

    async def show_preview(self, job: Job, text: str, picture: bytes) -> None:
        self.statuses.append((job.id, text))

    def status_chat(self, job: Job) -> str:
        return job.id

    async def send_result(self, letter: ResultLetter) -> None:
        await self._send(letter.job.id, lambda: self._arrive(letter.job.id))

    async def send_notice(self, job: Job, text: str, buttons: list[list[Button]]) -> None:
        self.notes.append((job.id, text, buttons))  # notes are not what is tested here

    def _arrive(self, job_id: str) -> None:
        # An idempotent platform (edits in place) shows a repeated send once.
        if not (self.resend_is_safe and self.pictures[job_id]):
            self.pictures[job_id] += 1

    async def _send(self, job_id: str, arrive: object) -> None:
        steps = self.script.get(job_id, [])
        outcome = steps.pop(0) if steps else "ok"
        if outcome in ("ok", "late-arrived", "killed-after"):
            arrive()  # type: ignore[operator]
        if outcome == "429":
            raise NotSent("flood control", retry_after=0.0)
        if outcome == "5xx":
            raise NotSent("bad gateway")
        if outcome.startswith("late"):
            if self.resend_is_safe:
                raise NotSent("timed out; safe to repeat")
            raise MaybeSent("read timed out")
        if outcome.startswith("killed"):
            self.kill.set()
            await asyncio.sleep(3600)  # the bot dies here; the task is cancelled


async def no_wait(_seconds: float) -> None:
    await asyncio.sleep(0)


async def painted_job(store: Store, data: Path, job_id: str, count: int = 1) -> Job:
    job = Job(job_id, "chat", "1", "Ann", request(count=count), {"chat_id": 1})
    await store.add_job(job)
    (data / "images").mkdir(exist_ok=True)
    for n in range(count):
        (data / "images" / f"{job_id}-{n}.png").write_bytes(b"png")
        job.images.append(ResultImage(f"images/{job_id}-{n}.png", n, "a fox"))
    job.status, job.finished_at = JobStatus.DELIVERING, time.time()
    await store.finish_job(job, outbox_entry(job.id, Finished(job.images)))
    return job


async def deliver_all(store: Store, data: Path, chat: ScriptedChat, restarts: int = 20) -> None:
    """Run couriers until the outbox is empty; a scripted kill ends one and the next
    starts from what the store says, as after a real restart."""
    for _ in range(restarts):
        chat.kill.clear()
        courier = Courier(store, EventHub(), data, sleep=no_wait)
        courier.register("chat", chat, status_interval=0.0)
        while await store.outbox() and not chat.kill.is_set():
            await asyncio.sleep(0.01)
        await courier.close(timeout=0)  # kill -9: nothing more happens
        if not await store.outbox():
            return
    raise AssertionError("the outbox never emptied")


def first_doubt(script: list[str], resend_is_safe: bool) -> str | None:
    """The step after which the courier may not know whether the picture arrived."""
    for step in script:
        if step == "ok":
            return None
        if step.startswith(("late", "killed")) and not resend_is_safe:
            return step
    return None  # the script ran out: every later send arrives


def run_scenario(scripts: list[list[str]], resend_is_safe: bool) -> None:
    async def scenario(data: Path) -> None:
        store = await Store.open(data)
        try:
            jobs = [await painted_job(store, data, f"job{n}") for n in range(len(scripts))]
            chat = ScriptedChat(
                resend_is_safe, {j.id: list(s) for j, s in zip(jobs, scripts, strict=True)}
            )
            await deliver_all(store, data, chat)
            for job, script in zip(jobs, scripts, strict=True):
                arrived = chat.pictures[job.id]
                notes = [text for job_id, text, _ in chat.notes if job_id == job.id]
                saved = await store.get_job(job.id)
                assert saved is not None and saved.status is JobStatus.DONE
                assert arrived <= 1, f"{job.id} arrived {arrived} times: {script}"
                doubt = first_doubt(script, resend_is_safe)
                # A kill that another job's send causes may catch this one mid-send too.
                killed_meanwhile = not resend_is_safe and any(
                    step.startswith("killed") for other in scripts for step in other
                )
                # A send that may have arrived is never repeated: the owner is told,
                # with the PNG to get it. Without such a doubt, the picture arrives.
                if doubt or not killed_meanwhile:
                    assert notes == ([UNCONFIRMED] if doubt else []), (script, notes)
                assert notes in ([], [UNCONFIRMED]), (script, notes)
                if not notes:
                    assert arrived == 1, script
                elif doubt in ("late-lost", "killed-before"):
                    assert arrived == 0, script
        finally:
            await store.close()

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(scenario(Path(folder)))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    scripts=st.lists(st.lists(st.sampled_from(OUTCOMES), max_size=4), min_size=1, max_size=3),
    resend_is_safe=st.booleans(),
)
def test_a_result_arrives_at_most_once_whatever_fails(
    scripts: list[list[str]], resend_is_safe: bool
) -> None:
    run_scenario(scripts, resend_is_safe)


@pytest.mark.parametrize(
    ("script", "resend_is_safe", "arrivals", "notes"),
    [
        (["429", "5xx", "ok"], False, 1, []),  # provably not sent: sent again
        (["killed-before"], True, 1, []),  # an edit: safe to repeat after a kill
        (["killed-after"], True, 1, []),
        (["killed-before"], False, 0, [UNCONFIRMED]),  # may have arrived: never again
        (["killed-after"], False, 1, [UNCONFIRMED]),
        (["late-lost"], False, 0, [UNCONFIRMED]),
    ],
)
def test_each_failure_is_handled_as_what_it_proves(
    script: list[str], resend_is_safe: bool, arrivals: int, notes: list[str]
) -> None:
    async def scenario(data: Path) -> None:
        store = await Store.open(data)
        try:
            job = await painted_job(store, data, "job")
            chat = ScriptedChat(resend_is_safe, {job.id: list(script)})
            await deliver_all(store, data, chat)
            assert chat.pictures[job.id] == arrivals
            assert [text for _, text, _ in chat.notes] == notes
            for _, _, buttons in chat.notes:
                assert [b.label for row in buttons for b in row] == ["📄 PNG"]
        finally:
            await store.close()

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(scenario(Path(folder)))


async def test_a_refused_message_is_given_up_and_the_others_go_on(tmp_path: Path) -> None:
    store = await Store.open(tmp_path)

    class RefusingChat(ScriptedChat):
        async def send_result(self, letter: ResultLetter) -> None:
            if letter.job.id == "gone":
                raise Undeliverable("bot was kicked from the chat")
            await super().send_result(letter)

    try:
        await painted_job(store, tmp_path, "gone")
        await painted_job(store, tmp_path, "fine")
        chat = RefusingChat(False, {})
        await deliver_all(store, tmp_path, chat)
        assert chat.pictures == Counter({"fine": 1})
        gone = await store.get_job("gone")
        assert gone is not None and gone.status is JobStatus.DONE
        assert gone.error is not None and "kicked" in gone.error
    finally:
        await store.close()


async def test_failures_are_told_and_statuses_never_land_after_the_end(tmp_path: Path) -> None:
    store = await Store.open(tmp_path)
    try:
        events = EventHub()
        chat = ScriptedChat(True, {})
        courier = Courier(store, events, tmp_path, sleep=no_wait)
        courier.register("chat", chat, status_interval=0.0)
        job = Job("job", "chat", "1", "Ann", request(), {"chat_id": 1})
        await store.add_job(job)
        await courier.accepted(job, "⏳ Queued: next up")
        events.emit(job, Started())
        job.status, job.error = JobStatus.FAILED, "the engine said no"
        await store.finish_job(job, outbox_entry(job.id, Failed("the engine said no")))
        events.emit(job, Failed("the engine said no"))
        events.emit(job, Queued(1, None))  # late: must not show over the end
        while await store.outbox():
            await asyncio.sleep(0.01)
        await courier.close()
        assert [text for _, text in chat.statuses] == ["⏳ Queued: next up", "🎨 Painting…"]
        assert [text for _, text, _ in chat.notes] == ["⚠️ the engine said no"]
    finally:
        await store.close()


async def test_a_status_that_comes_too_soon_is_shown_late_not_dropped(tmp_path: Path) -> None:
    store = await Store.open(tmp_path)
    try:
        events = EventHub()
        chat = ScriptedChat(True, {})
        courier = Courier(store, events, tmp_path)
        courier.register("chat", chat, status_interval=0.5)
        job = Job("job", "chat", "1", "Ann", request(), {"chat_id": 1})
        await courier.accepted(job, "⏳ Queued: next up")
        events.emit(job, Started())  # within the interval: held, then shown
        await asyncio.sleep(0.1)
        assert [text for _, text in chat.statuses] == ["⏳ Queued: next up"]
        await asyncio.sleep(0.6)
        assert [text for _, text in chat.statuses] == ["⏳ Queued: next up", "🎨 Painting…"]
        await courier.close()
    finally:
        await store.close()
