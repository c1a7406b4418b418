"""A job's status line, as the adapters show it: throttled, but never left stale.

Chat platforms limit how often a message may be edited, so a status that arrives
within `interval` of the last edit waits; it is not dropped. The newest text is shown
once the interval is over (a trailing edit), so the user never looks at an outdated
line (say "Queued" while the job is painting) for longer than `interval`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("atelier.delivery")

Edit = Callable[[str], Awaitable[None]]


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
        self._edit: Edit | None = None
        self._trailing: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        """A status was already asked for."""
        return self._wanted is not None

    async def show(self, text: str, edit: Edit) -> None:
        """Show `text` with `edit` now, or once `interval` has passed since the last edit.

        The caller holds `lock`."""
        self._wanted, self._edit = text, edit
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
        if self._wanted is None or self._wanted == self._shown or self._edit is None:
            return
        text = self._wanted
        self._shown, self._shown_at = text, asyncio.get_running_loop().time()
        await self._edit(text)
