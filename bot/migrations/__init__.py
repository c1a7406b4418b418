"""The database schema: numbered SQL files `NNN_name.sql`, applied in order.

The number of the last file applied is kept in `PRAGMA user_version`, so opening a
database brings it up to date and refuses one made by a newer Atelier.
"""

from __future__ import annotations

import re
import sqlite3
from importlib import resources
from importlib.resources.abc import Traversable

import aiosqlite

_MIGRATION_NAME = re.compile(r"^(\d{3})_[\w-]+\.sql$")


class SchemaError(Exception):
    """The schema cannot be brought up to date; the message names the file."""


def default_migrations() -> Traversable:
    return resources.files(__package__)


def migration_files(folder: Traversable) -> list[tuple[int, Traversable]]:
    """The numbered migrations in `folder`, checked to run 001, 002, … without gaps."""
    found = []
    for entry in folder.iterdir():
        if match := _MIGRATION_NAME.match(entry.name):
            found.append((int(match[1]), entry))
    found.sort(key=lambda item: item[0])
    for expected, (number, entry) in enumerate(found, start=1):
        if number != expected:
            raise SchemaError(f"migration {entry.name}: expected number {expected:03d}")
    return found


async def migrate(db: aiosqlite.Connection, folder: Traversable) -> None:
    migrations = migration_files(folder)
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    current = int(row[0]) if row else 0
    if current > len(migrations):
        raise SchemaError(
            f"the database has schema version {current}, but this Atelier knows only "
            f"{len(migrations)}: it was made by a newer version"
        )
    for number, entry in migrations[current:]:
        sql = entry.read_text(encoding="utf-8")
        # One transaction per file: a failing migration leaves the previous version.
        try:
            await db.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")
        except sqlite3.DatabaseError as exc:
            await db.rollback()
            raise SchemaError(f"migration {entry.name} failed: {exc}") from exc
