"""Retention: pictures and inputs older than `[storage] keep_days` are deleted.

Runs at start and then every `INTERVAL_S`. Inputs of jobs that may still run are kept
whatever their age. A button on an expired result finds no file and says so; nothing
else refers to the files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

from bot.store import Store

log = logging.getLogger("atelier.retention")

INTERVAL_S = 3600.0
FOLDERS = ("images", "inputs")


def prune(data_dir: Path, older_than: float, keep: set[str]) -> int:
    """Delete files in the picture folders last changed before `older_than` (unix
    time), except the relative paths in `keep`; returns how many were deleted.

    Blocking (file system walk): call it in a thread.
    """
    deleted = 0
    for folder in FOLDERS:
        root = data_dir / folder
        if not root.is_dir():
            continue
        for path in root.iterdir():
            relative = f"{folder}/{path.name}"
            try:
                if path.is_file() and relative not in keep and path.stat().st_mtime < older_than:
                    path.unlink()
                    deleted += 1
            except OSError as exc:  # gone meanwhile, or not ours to delete
                log.warning("retention: %s not deleted: %s", path, exc)
    return deleted


class Retention:
    def __init__(self, store: Store, data_dir: Path, keep_days: float) -> None:
        self._store = store
        self._data_dir = data_dir
        self._keep_s = keep_days * 86400
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def prune_now(self) -> int:
        keep = await self._store.inputs_in_use()
        older_than = time.time() - self._keep_s
        deleted = await asyncio.to_thread(prune, self._data_dir, older_than, keep)
        if deleted:
            log.info(
                "retention: deleted %d pictures older than %g days", deleted, self._keep_s / 86400
            )
        return deleted

    async def _run(self) -> None:
        while True:
            try:
                await self.prune_now()
            except Exception:
                log.exception("retention: pruning failed; trying again later")
            await asyncio.sleep(INTERVAL_S)
