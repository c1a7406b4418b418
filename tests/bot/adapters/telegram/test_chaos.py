"""Faults while the bot runs, through the real adapter and the fake Bot API: every job
ends delivered exactly once (count the photos answering each command), or with one
clear message, and the bot goes on serving.

(`kill -9` of the bot itself is in test_kill.py.)
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.jobs.painting import NOT_SAVED
from bot.records import JobStatus

from .fake_bot_api import FakeBotApi, Fault
from .harness import RunningBot, telegram_config

# The client gives up on an upload's answer after this long (120 s in production).
UPLOAD_TIMEOUT_S = 2.0
PEOPLE, ROUNDS = 50, 6


@pytest.fixture(scope="module")
async def bot(
    fake_api: FakeBotApi,
    tiny_model_dir: Path,
    write_config: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningBot]:
    folder = tmp_path_factory.mktemp("chaos")
    config = telegram_config(fake_api, tiny_model_dir).replace(
        "max_queued_per_user = 10", "max_queued_per_user = 10\nmax_steps = 400\nmax_queue = 1000"
    )
    running = await RunningBot.start(
        fake_api, write_config(folder, config), upload_timeout=UPLOAD_TIMEOUT_S
    )
    yield running
    await running.stop()


def answers(fake: FakeBotApi, message: dict[str, Any], method: str = "sendPhoto") -> list:
    return [
        call
        for call in fake.calls_of(method)
        if call.params.get("reply_parameters", {}).get("message_id") == message["message_id"]
    ]


async def until(predicate: Callable[[], object], what: str, timeout: float = 120.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def kill_engine(bot: RunningBot) -> None:
    health = await bot.services.engine.health()
    os.kill(int(health["pid"]), signal.SIGKILL)  # type: ignore[arg-type]


async def test_an_engine_killed_mid_batch_loses_nothing_and_repeats_nothing(
    bot: RunningBot,
) -> None:
    fake = bot.fake
    ann, bob = bot.new_user("Ann"), bot.new_user("Bob")
    ann_chat, bob_chat = fake.private_chat(ann), fake.private_chat(bob)
    slow = await fake.send_text(ann, ann_chat, "/imagine a slow fox --steps 120")
    asked = [
        slow,
        await fake.send_text(ann, ann_chat, "/imagine a fast fox --steps 2"),
        await fake.send_text(bob, bob_chat, "/imagine a fast hat --steps 2"),
    ]

    def painting() -> bool:
        return any(
            "Painting" in call.params.get("text", "")
            for call in fake.calls_of("editMessageText", chat_id=ann_chat["id"])
        )

    await until(painting, "the slow job to paint")
    await kill_engine(bot)
    for message in asked:
        await until(lambda m=message: answers(fake, m), "every picture", 180)
    await asyncio.sleep(0.5)
    assert [len(answers(fake, message)) for message in asked] == [1, 1, 1]


async def test_an_unwritable_images_folder_fails_that_batch_and_later_jobs_work(
    bot: RunningBot,
) -> None:
    fake = bot.fake
    user = bot.new_user("Una")
    chat = fake.private_chat(user)
    images = bot.services.config.data_dir / "images"
    shutil.move(images, images.with_name("images.away"))
    images.write_text("not a folder: every write into it fails")  # also as root
    try:
        doomed = await fake.send_text(user, chat, "/imagine a lost fox --steps 2")
        failure = await fake.next_call(
            "editMessageText",
            since=0,
            chat_id=chat["id"],
            where=lambda call: NOT_SAVED in call.params["text"],
            timeout=60,
        )
        assert failure.params["text"] == f"⚠️ {NOT_SAVED}"
    finally:
        images.unlink()
        shutil.move(images.with_name("images.away"), images)
    fine = await fake.send_text(user, chat, "/imagine a found fox --steps 2")
    await until(lambda: answers(fake, fine), "the next picture")
    assert answers(fake, doomed) == []
    (job,) = [j for j in await bot.jobs_of(user) if j.request.prompt == "a lost fox"]
    assert job.status is JobStatus.FAILED and job.error == NOT_SAVED


async def test_a_send_answered_after_the_time_out_is_not_sent_again(bot: RunningBot) -> None:
    fake = bot.fake
    user = bot.new_user("Lea")
    chat = fake.private_chat(user)
    message = await fake.send_text(user, chat, "/imagine a late fox --steps 2")
    late = fake.add_fault(
        Fault(
            "sendPhoto",
            lambda params: (
                params.get("reply_parameters", {}).get("message_id") == message["message_id"]
            ),
            answer_after=UPLOAD_TIMEOUT_S + 3,
        )
    )
    try:
        note = await fake.next_call(
            "editMessageText",
            since=0,
            chat_id=chat["id"],
            where=lambda call: "did not confirm" in call.params["text"],
            timeout=60,
        )
    finally:
        fake.faults.remove(late)
    # The picture did arrive (the platform took it), exactly once; the note offers
    # the original in case it had not.
    assert len(answers(fake, message)) == 1
    assert "📄 PNG" in str(note.params["reply_markup"])
    await asyncio.sleep(UPLOAD_TIMEOUT_S)
    assert len(answers(fake, message)) == 1


async def test_fifty_users_six_jobs_random_cancels_and_an_engine_kill(bot: RunningBot) -> None:
    fake = bot.fake
    chance = random.Random(8)
    people = [bot.new_user(f"P{n}") for n in range(PEOPLE)]
    chats = {person["id"]: fake.private_chat(person) for person in people}
    asked: list[dict[str, Any]] = []
    for round_ in range(ROUNDS):
        for person in people[:PEOPLE]:
            chat = chats[person["id"]]
            text = f"/imagine a fox {round_} --steps 1 --size 64x64"
            asked.append(await fake.send_text(person, chat, text))
            if chance.random() < 0.15:
                await fake.send_text(person, chat, "/cancel")
        if round_ == 2:
            await kill_engine(bot)
        await asyncio.sleep(0.2)

    async def states() -> Counter[str]:
        jobs = [job for person in people for job in await bot.jobs_of(person)]
        return Counter(job.status.value for job in jobs)

    try:
        async with asyncio.timeout(400):
            while set(await states()) - {"done", "cancelled"}:
                await asyncio.sleep(0.5)
    except TimeoutError:
        raise AssertionError(f"not settled: {await states()}") from None
    assert (await states()).total() == len(asked)
    jobs = {job.origin["reply_to"]: job for p in people for job in await bot.jobs_of(p)}
    delivered = {m["message_id"]: len(answers(fake, m)) for m in asked}
    cancelled = [m for m, job in jobs.items() if job.status is JobStatus.CANCELLED]
    assert cancelled, "the random cancels cancelled nothing"
    assert {m: n for m, n in delivered.items() if m not in cancelled} == {
        m: 1 for m in delivered if m not in cancelled
    }
    assert all(delivered[m] == 0 for m in cancelled)
    # The figures for the record (pytest -s shows them).
    print(
        f"\nchaos: {len(asked)} jobs, {len(cancelled)} cancelled, "
        f"{sum(n == 1 for n in delivered.values())} delivered once, "
        f"{sum(n > 1 for n in delivered.values())} twice or more, "
        f"{sum(n == 0 for m, n in delivered.items() if m not in cancelled)} lost"
    )
    # Still serving.
    last = await fake.send_text(people[0], chats[people[0]["id"]], "/imagine a last fox")
    await until(lambda: answers(fake, last), "a picture after all that")
