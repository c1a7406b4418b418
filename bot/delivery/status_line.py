"""A job's status line, as the adapters show it: throttled, but never left stale.

Chat platforms limit how often a message may be edited, so a status that arrives
within `interval` of the last edit waits; it is not dropped. The newest text is shown
once the interval is over (a trailing edit), so the user never looks at an outdated
line (say "Queued" while the job is painting) for longer than `interval`.

A live preview (a small JPEG of the picture so far) rides on the same edits, so it
costs no edit of its own. Pictures also count against the chat's budget
(`PreviewBudget`, one per chat or group, whatever job they belong to): an edit that
finds it spent shows only the text, and the newest preview goes with a later edit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("atelier.delivery")

# (text, a new preview picture or None): None leaves the picture shown as it is.
Edit = Callable[[str, bytes | None], Awaitable[None]]


class PreviewBudget:
    """At most one preview picture per `interval` seconds in one chat (or group)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: float | None = None

    def take(self) -> bool:
        now = asyncio.get_running_loop().time()
        if self._last is not None and now - self._last < self.interval:
            return False
        self._last = now
        return True


class StatusLine:
    """One job's status. Hold `lock` around `show` and around the job's final message,
    so a late status edit never lands after (and over) the result."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.lock = asyncio.Lock()
        self.done = False
        self._wanted: str | None = None
        self._shown: str | None = None
        self._shown_at: float | None = None  # loop time of the last edit
        self._wanted_preview: bytes | None = None
        self._shown_preview: bytes | None = None
        self._budget: PreviewBudget | None = None
        self._edit: Edit | None = None
        self._trailing: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        """A status was already asked for."""
        return self._wanted is not None

    async def show(
        self,
        text: str,
        edit: Edit,
        preview: bytes | None = None,
        budget: PreviewBudget | None = None,
    ) -> None:
        """Show `text` (and `preview`, when given; else the picture stays as it is) with
        `edit` now, or once `interval` has passed since the last edit.

        The caller holds `lock`."""
        self._wanted, self._edit = text, edit
        if preview is not None:
            self._wanted_preview, self._budget = preview, budget
        if self._shown_at is None:
            await self._flush()
            return
        wait = self._shown_at + self.interval - asyncio.get_running_loop().time()
        if wait <= 0:
            await self._flush()
        elif self._trailing is None or self._trailing.done():
            self._trailing = asyncio.create_task(self._show_later(wait))

    def finish(self) -> None:
        """The job is over: no status edit from now on. An edit already under way (its
        caller holds `lock`) still completes; take `lock` to wait for it."""
        self.done = True
        if self._trailing is not None:
            self._trailing.cancel()

    async def _show_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        async with self.lock:
            if self.done:
                return
            try:
                await self._flush()
            except Exception:
                # Progress is transient: a failed edit must not end up unretrieved.
                log.exception("a delayed status edit failed")

    async def _flush(self) -> None:
        if self._wanted is None or self._edit is None:
            return
        picture = self._wanted_preview
        if picture is not None and picture == self._shown_preview:
            picture = None
        if picture is not None and self._budget is not None and not self._budget.take():
            picture = None  # the chat had one just now: this one waits for a later edit
        if self._wanted == self._shown and picture is None:
            return
        text = self._wanted
        self._shown, self._shown_at = text, asyncio.get_running_loop().time()
        if picture is not None:
            self._shown_preview = picture
        await self._edit(text, picture)
