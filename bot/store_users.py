"""The store's per-user records: /settings, bans and the audit log.

A part of `Store` (which inherits it); it writes through the store's transactions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bot.records import UserSettings
from bot.store_rows import StoreBase

_USER_SETTINGS_COLUMNS = "aspect, steps, sampler, negative, remix, dm_results"


@dataclass(frozen=True)
class AuditEntry:
    ts: float
    actor: str
    action: str
    detail: str


class UserRecords(StoreBase):
    _banned: set[str]  # every banned user key, in memory (set by `Store`)

    # Per-user settings

    async def user_settings(self, user_key: str) -> UserSettings:
        """The user's /settings; the defaults when they never changed any."""
        async with self._db.execute(
            f"SELECT {_USER_SETTINGS_COLUMNS} FROM user_settings WHERE user_key = ?", (user_key,)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return UserSettings()
        aspect, steps, sampler, negative, remix, dm_results = row
        return UserSettings(aspect, steps, sampler, negative, bool(remix), bool(dm_results))

    async def set_user_settings(self, user_key: str, settings: UserSettings) -> None:
        """Save the user's settings; all defaults deletes the row."""
        if settings == UserSettings():
            await self._write("DELETE FROM user_settings WHERE user_key = ?", (user_key,))
            return
        await self._write(
            f"INSERT OR REPLACE INTO user_settings (user_key, {_USER_SETTINGS_COLUMNS}, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                user_key,
                settings.aspect,
                settings.steps,
                settings.sampler,
                settings.negative,
                int(settings.remix),
                int(settings.dm_results),
                time.time(),
            ),
        )

    # Bans and audit

    async def ban(self, user_key: str, by: str, reason: str = "") -> None:
        await self._write(
            "INSERT INTO bans (user_key, banned_by, reason, banned_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (user_key) DO UPDATE SET banned_by = excluded.banned_by, "
            "reason = excluded.reason, banned_at = excluded.banned_at",
            (user_key, by, reason, time.time()),
        )
        self._banned.add(user_key)

    async def unban(self, user_key: str) -> None:
        await self._write("DELETE FROM bans WHERE user_key = ?", (user_key,))
        self._banned.discard(user_key)

    async def is_banned(self, user_key: str) -> bool:
        return user_key in self._banned

    async def audit(self, actor: str, action: str, detail: str = "") -> None:
        await self._write(
            "INSERT INTO audit (ts, actor, action, detail) VALUES (?, ?, ?, ?)",
            (time.time(), actor, action, detail),
        )

    async def recent_audit(self, limit: int = 50) -> list[AuditEntry]:
        """The newest audit entries, newest first."""
        async with self._db.execute(
            "SELECT ts, actor, action, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,)
        ) as cursor:
            return [AuditEntry(*row) async for row in cursor]
