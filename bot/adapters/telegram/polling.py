"""Long polling that confirms an update only once it has been handled.

Telegram keeps an update until a `getUpdates` call asks for a later offset.
python-telegram-bot's own Updater asks for the next one as soon as it has *fetched*
a batch, so a bot killed while a command was being handled (a photo downloading for
`/vary`, a job being saved) has confirmed a command it never acted on: lost. Here
the offset moves past an update only when its handler has returned, so whatever was
in flight at a kill is fetched again after the restart.

While an update is in flight, Telegram answers every `getUpdates` at once with it
(it is not confirmed yet); the poller then waits for a handler to finish, or a short
while, before it asks again, rather than spinning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from telegram import Bot, Update
from telegram.error import InvalidToken, TelegramError

log = logging.getLogger("atelier.telegram")

Handle = Callable[[Update], Awaitable[None]]
# Seconds to wait for a handler to finish before asking Telegram again.
BUSY_WAIT_S = 0.5
# Seconds between polls after a failure: doubling up to the cap.
ERROR_BACKOFF_S = (1.0, 30.0)


class ConfirmingPoller:
    def __init__(
        self,
        bot: Bot,
        handle: Handle,
        *,
        timeout: int,
        concurrency: int = 16,
        error_backoff: tuple[float, float] = ERROR_BACKOFF_S,
    ) -> None:
        self.bot = bot
        self.handle = handle
        self.timeout = timeout
        self.error_backoff = error_backoff
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._done: set[int] = set()  # handled, not yet confirmed to Telegram
        self._offset: int | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._poll(), name="telegram-poll")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop fetching; give handlers in flight `grace` seconds, then confirm what
        they finished. Whatever is still unfinished is fetched again at the next start."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._in_flight:
            await asyncio.wait(list(self._in_flight.values()), timeout=grace)
        for pending in list(self._in_flight.values()):
            pending.cancel()
        await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
        offset = self._confirmable()
        if offset is not None and offset != self._offset:
            with contextlib.suppress(TelegramError, OSError):
                # Asking for the next offset is what confirms; what it returns stays
                # unconfirmed on Telegram's side, so nothing is lost by ignoring it.
                await self.bot.get_updates(offset=offset, timeout=0, limit=1)

    async def _poll(self) -> None:
        delay, cap = self.error_backoff
        while True:
            self._offset = self._confirmable()
            try:
                updates = await self.bot.get_updates(offset=self._offset, timeout=self.timeout)
            except InvalidToken:
                log.error("Telegram rejected the token while polling; no more commands")
                return
            except TelegramError as exc:
                log.warning("Telegram polling failed (%s); trying again in %g s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(cap, delay * 2)
                continue
            delay = self.error_backoff[0]
            fresh = [
                update
                for update in updates
                if update.update_id not in self._in_flight and update.update_id not in self._done
            ]
            for update in fresh:
                await self._slots.acquire()
                self._in_flight[update.update_id] = asyncio.get_running_loop().create_task(
                    self._run(update), name=f"telegram-update-{update.update_id}"
                )
            if not fresh and self._in_flight:
                await asyncio.wait(
                    list(self._in_flight.values()),
                    timeout=BUSY_WAIT_S,
                    return_when=asyncio.FIRST_COMPLETED,
                )

    async def _run(self, update: Update) -> None:
        handled = False
        try:
            await self.handle(update)
            handled = True
        except Exception:
            # The application reports handler errors itself; an update that fails is
            # handled all the same (fetching it again would fail again).
            log.exception("handling Telegram update %s failed", update.update_id)
            handled = True
        finally:
            # Cancelled at a stop: not handled, so not confirmed.
            self._slots.release()
            del self._in_flight[update.update_id]
            if handled:
                self._done.add(update.update_id)

    def _confirmable(self) -> int | None:
        """The offset that confirms every handled update below the first unfinished one."""
        if not self._done:
            return self._offset
        first_open = min(self._in_flight, default=None)
        handled = sorted(
            update_id for update_id in self._done if first_open is None or update_id < first_open
        )
        if not handled:
            return self._offset
        offset = handled[-1] + 1
        self._done.difference_update(handled)
        return offset
