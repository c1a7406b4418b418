from __future__ import annotations

import asyncio
import dataclasses
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.jobs.limits import day_bounds, start_of_day
from bot.records import GenerationRequest, Job, JobStatus, ResultImage, UserSettings
from bot.store import DB_FILENAME, Store, StoreError, default_migrations, new_job_id

MIGRATIONS = sorted(p.name for p in default_migrations().iterdir() if p.name.endswith(".sql"))


def request(count: int = 1, **changes: object) -> GenerationRequest:
    values: dict[str, object] = {
        "kind": "imagine",
        "prompt": "a red fox",
        "negative": "blurry",
        "model": "tiny",
        "seed": 7,
        "steps": 4,
        "cfg": 7.0,
        "width": 64,
        "height": 64,
        "sampler": "Euler a",
        "count": count,
    }
    values.update(changes)
    return GenerationRequest(**values)  # type: ignore[arg-type]


def job(user: str = "1", *, created: float | None = None, count: int = 1, **changes) -> Job:
    return Job(
        id=new_job_id(),
        platform="telegram",
        user_id=user,
        user_name=f"user {user}",
        request=request(count),
        origin={"chat_id": 42, "message_id": 7},
        created_at=time.time() if created is None else created,
        **changes,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "db" / "atelier.sqlite3")
    yield opened
    await opened.close()


async def test_a_job_round_trips_with_its_pictures(store: Store) -> None:
    saved = job(count=2)
    await store.add_job(saved)
    assert await store.get_job(saved.id) == saved

    saved.status = JobStatus.DONE
    saved.started_at, saved.finished_at, saved.attempts = 1.5, 2.5, 1
    saved.images = [
        ResultImage(f"images/{saved.id}-1.png", 7, "a red fox\nSteps: 4"),
        ResultImage(f"images/{saved.id}-2.png", 8, "a red fox\nSteps: 4", flagged=True),
    ]
    await store.update_job(saved)
    loaded = await store.get_job(saved.id)
    assert loaded == saved
    assert loaded is not None and loaded.request.negative == "blurry"

    assert await store.get_job("nosuchjob0") is None


async def test_jobs_added_together_are_all_saved_and_a_bad_one_fails_alone(
    store: Store,
) -> None:
    first = job("1")
    await store.add_job(first)
    many = [job(str(n)) for n in range(50)]
    duplicate = dataclasses.replace(many[10], id=first.id)
    many[10] = duplicate
    results = await asyncio.gather(*(store.add_job(j) for j in many), return_exceptions=True)

    assert isinstance(results[10], sqlite3.IntegrityError)
    assert [r for n, r in enumerate(results) if n != 10] == [None] * 49
    saved = await store.jobs_with_status(JobStatus.QUEUED)
    assert len(saved) == 50
    assert (await store.get_job(first.id)) == first


async def test_a_job_that_cannot_be_encoded_fails_alone_instead_of_stalling_writes(
    store: Store,
) -> None:
    # An adapter's bug (a set in the delivery details) must not hang every submit.
    good = [job("1"), job("2")]
    bad = job("3")
    bad.origin = {"chat_id": {1, 2}}
    results = await asyncio.wait_for(
        asyncio.gather(
            *(store.add_job(j) for j in [good[0], bad, good[1]]), return_exceptions=True
        ),
        timeout=5,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], TypeError)
    saved = await store.jobs_with_status(JobStatus.QUEUED)
    assert {j.id for j in saved} == {good[0].id, good[1].id}
    await asyncio.wait_for(store.add_job(job("4")), timeout=5)


async def test_jobs_with_status_lists_oldest_first(store: Store) -> None:
    now = time.time()
    newest, oldest, middle = job(created=now), job(created=now - 20), job(created=now - 10)
    done = job(created=now - 30, status=JobStatus.DONE)
    for each in (newest, oldest, middle, done):
        await store.add_job(each)

    queued = await store.jobs_with_status(JobStatus.QUEUED)
    assert [j.id for j in queued] == [oldest.id, middle.id, newest.id]
    both = await store.jobs_with_status(JobStatus.QUEUED, JobStatus.DONE)
    assert both[0].id == done.id and len(both) == 4
    assert await store.jobs_with_status() == []


async def test_update_origin_merges_delivery_details(store: Store) -> None:
    saved = job()
    saved.origin = {"chat_id": 1, "reply_to": 5}
    await store.add_job(saved)
    await store.update_origin(saved.id, {"message_id": 99, "thread": "x"})
    await store.update_origin(saved.id, {"reply_to": None, "album": [1, 2]})
    loaded = await store.get_job(saved.id)
    assert loaded is not None
    assert loaded.origin == {"chat_id": 1, "message_id": 99, "thread": "x", "album": [1, 2]}


async def test_settings_bans_and_audit_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "atelier.sqlite3"
    store = await Store.open(path)
    await store.set_setting("current_model", "sd15")
    await store.set_setting("current_model", "tiny")
    await store.ban("telegram:5", by="telegram:1", reason="spam")
    await store.ban("discord:6", by="discord:1")
    await store.unban("discord:6")
    await store.audit("telegram:1", "ban", "telegram:5 spam")
    await store.close()

    store = await Store.open(path)
    try:
        assert await store.get_setting("current_model") == "tiny"
        assert await store.get_setting("missing") is None
        assert await store.is_banned("telegram:5")
        assert not await store.is_banned("discord:6")
        assert not await store.is_banned("telegram:6")
        (entry,) = await store.recent_audit()
        assert (entry.actor, entry.action, entry.detail) == ("telegram:1", "ban", "telegram:5 spam")
        assert entry.ts == pytest.approx(time.time(), abs=60)
    finally:
        await store.close()


async def test_images_today_counts_what_was_asked_for_since_midnight(store: Store) -> None:
    today = start_of_day(time.time())
    for each in (
        job(count=3, created=today + 1, status=JobStatus.DONE),
        job(count=2, created=time.time()),
        job(count=1, created=time.time(), status=JobStatus.RUNNING),
        job(count=4, created=time.time(), status=JobStatus.FAILED),
        job(count=4, created=time.time(), status=JobStatus.CANCELLED),
        job(count=4, created=today - 1, status=JobStatus.DONE),
        job("2", count=4, created=time.time()),
    ):
        await store.add_job(each)
    since, until = day_bounds(time.time())
    assert await store.images_today("telegram:1", since=since, until=until) == 6
    assert await store.images_today("telegram:2", since=since, until=until) == 4
    assert await store.images_today("telegram:3", since=since, until=until) == 0
    since, until = day_bounds(today - 10)
    assert await store.images_today("telegram:1", since=since, until=until) == 4


async def test_the_schema_is_migrated_and_tracked_in_user_version(store: Store) -> None:
    assert MIGRATIONS[0] == "001_init.sql"
    assert await store.schema_version() == len(MIGRATIONS)
    with sqlite3.connect(store.path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
    assert {"users", "jobs", "job_images", "bans", "settings", "audit"} <= tables


async def test_new_migrations_apply_in_order_to_an_existing_database(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for name in MIGRATIONS:
        (folder / name).write_text((default_migrations() / name).read_text())
    path = tmp_path / "atelier.sqlite3"
    store = await Store.open(path, migrations=folder)
    saved = job()
    await store.add_job(saved)
    await store.close()

    next_number = len(MIGRATIONS) + 1
    (folder / f"{next_number + 1:03d}_second.sql").write_text(
        "UPDATE jobs SET user_name = user_name || ' (second)';"
    )
    (folder / f"{next_number:03d}_first.sql").write_text(
        "ALTER TABLE jobs ADD COLUMN note TEXT NOT NULL DEFAULT 'first';"
        "UPDATE jobs SET user_name = note;"
    )
    store = await Store.open(path, migrations=folder)
    try:
        assert await store.schema_version() == next_number + 1
        loaded = await store.get_job(saved.id)
        assert loaded is not None and loaded.user_name == "first (second)"
    finally:
        await store.close()


async def test_a_failing_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_init.sql").write_text((default_migrations() / "001_init.sql").read_text())
    (folder / "002_broken.sql").write_text(
        "ALTER TABLE jobs ADD COLUMN note TEXT; SELECT * FROM no_such_table;"
    )
    path = tmp_path / "atelier.sqlite3"
    with pytest.raises(StoreError, match=r"migration 002_broken\.sql failed"):
        await Store.open(path, migrations=folder)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
        columns = {row[1] for row in raw.execute("PRAGMA table_info(jobs)")}
    assert "note" not in columns


async def test_a_database_from_a_newer_atelier_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "atelier.sqlite3"
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    with pytest.raises(StoreError, match="made by a newer version"):
        await Store.open(path)


async def test_a_damaged_file_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "atelier.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot use the database"):
        await Store.open(path)


async def test_a_path_under_a_file_gives_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open the database"):
        await Store.open(tmp_path / "data" / "atelier.sqlite3")


async def test_a_folder_path_holds_the_default_file(tmp_path: Path) -> None:
    store = await Store.open(tmp_path)
    await store.close()
    assert (tmp_path / DB_FILENAME).is_file()


async def test_pictures_must_belong_to_a_job(store: Store) -> None:
    with sqlite3.connect(store.path) as raw:
        raw.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(sqlite3.IntegrityError):
            raw.execute(
                "INSERT INTO job_images (job_id, idx, path, seed, parameters) "
                "VALUES ('nosuchjob0', 0, 'x.png', 1, '')"
            )


def test_job_ids_are_short_random_and_callback_safe() -> None:
    ids = {new_job_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[a-z2-7]{10}", job_id) for job_id in ids)


async def test_user_settings_survive_a_reopen_and_all_defaults_leave_no_row(
    tmp_path: Path,
) -> None:
    path = tmp_path / "atelier.sqlite3"
    store = await Store.open(path)
    assert await store.user_settings("telegram:1") == UserSettings()
    mine = UserSettings("3:2", 30, "DPM++ 2M", "blurry, text", remix=True, dm_results=True)
    await store.set_user_settings("telegram:1", mine)
    await store.set_user_settings("discord:1", UserSettings(steps=12))
    await store.close()

    store = await Store.open(path)
    assert await store.user_settings("telegram:1") == mine
    assert await store.user_settings("discord:1") == UserSettings(steps=12)
    await store.set_user_settings("telegram:1", UserSettings())
    assert await store.user_settings("telegram:1") == UserSettings()
    await store.close()
    with sqlite3.connect(path) as raw:
        keys = [row[0] for row in raw.execute("SELECT user_key FROM user_settings")]
    assert keys == ["discord:1"]


async def test_inputs_in_use_include_the_masks_of_waiting_jobs(store: Store) -> None:
    edit = request(kind="inpaint", init_image="inputs/canvas.png", mask_image="inputs/mask.png")
    waiting = dataclasses.replace(job(), request=edit)
    done = dataclasses.replace(
        job(),
        request=dataclasses.replace(edit, init_image="inputs/old.png", mask_image="inputs/m2.png"),
        status=JobStatus.DONE,
    )
    for saved in (waiting, done):
        await store.add_job(saved)
    assert await store.inputs_in_use() == {"inputs/canvas.png", "inputs/mask.png"}
    loaded = await store.get_job(waiting.id)
    assert loaded is not None and loaded.request.mask_image == "inputs/mask.png"
