"""Every Bot API call the adapter makes survives flood control and brief outages.

python-telegram-bot routes each request (except `getUpdates`, which the Updater retries
itself) through the application's rate limiter, so retrying there covers handler
replies, status edits and result uploads alike.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger("atelier.telegram")

ApiResult = bool | dict[str, Any] | list[dict[str, Any]]


class RetryingLimiter(BaseRateLimiter[None]):
    """Waits out `RetryAfter` (429) and retries 5xx / network errors with backoff.

    A `BadRequest` is our mistake or a gone message, so it is never retried.
    """

    def __init__(self, *, attempts: int = 5, first_backoff: float = 0.5) -> None:
        self.attempts = attempts
        self.first_backoff = first_backoff

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, ApiResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> ApiResult:
        backoff = self.first_backoff
        for _ in range(self.attempts - 1):
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                delay = _seconds(exc.retry_after)
                log.warning("Telegram flood control on %s: waiting %.1f s", endpoint, delay)
                await asyncio.sleep(delay)
            except BadRequest:
                raise
            except NetworkError as exc:  # also TimedOut and 5xx answers
                log.warning("Telegram %s failed (%s); retrying in %.1f s", endpoint, exc, backoff)
                await asyncio.sleep(backoff)
                backoff *= 2
        return await callback(*args, **kwargs)


def _seconds(value: int | float | dt.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
