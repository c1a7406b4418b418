"""When a Bot API call is tried again, and what a failed one proves.

python-telegram-bot routes each request (except `getUpdates`, which the Updater retries
itself) through the application's rate limiter, so the policy lives here, once:

- A call is retried only when the request provably did not take effect: a 429
  (`RetryAfter`: Telegram refused it), an HTTP 5xx answer, or a connection that failed
  before the request went out (connect error, connect or pool time-out).
- A read time-out or a connection dropped mid-answer proves nothing: the message may
  be in the chat. Idempotent calls (edits, deletes, chat actions, lookups) are retried
  anyway; sends are not, since a second send would be a second message.
- Final deliveries pass `rate_limit_args=FINAL`: they are tried once here, and the
  delivery layer's outbox retries them (persisted, so a restart honours a 429 too).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import BaseRateLimiter

from bot.delivery.sender import MaybeSent, NotSent, Undeliverable

log = logging.getLogger("atelier.telegram")

ApiResult = bool | dict[str, Any] | list[dict[str, Any]]
# `rate_limit_args` of a final delivery: one try, the outbox decides about the next.
FINAL = "final"

# Calls whose repetition changes nothing: safe to retry even when an answer was lost.
IDEMPOTENT = frozenset(
    {
        "getMe",
        "getFile",
        "setMyCommands",
        "deleteWebhook",
        "editMessageText",
        "editMessageCaption",
        "editMessageMedia",
        "editMessageReplyMarkup",
        "deleteMessage",
        "sendChatAction",
        "answerCallbackQuery",
    }
)
_NOT_SENT_CAUSES = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def provably_not_sent(exc: TelegramError) -> bool:
    """Telegram cannot have acted on the request that raised `exc`."""
    if isinstance(exc, RetryAfter):
        return True
    # BadRequest is a NetworkError in python-telegram-bot, but a definite answer.
    if not isinstance(exc, NetworkError) or isinstance(exc, BadRequest):
        return False
    cause = exc.__cause__
    if isinstance(cause, httpx.HTTPError):
        return isinstance(cause, _NOT_SENT_CAUSES)
    # No transport error behind it: Telegram answered with a 5xx.
    return True


def delivery_error(exc: TelegramError) -> Exception:
    """`exc` in the delivery layer's terms (see bot/delivery/sender.py)."""
    if isinstance(exc, RetryAfter):
        return NotSent("flood control", retry_after=seconds(exc.retry_after))
    if provably_not_sent(exc):
        return NotSent(str(exc))
    if isinstance(exc, BadRequest | Forbidden | InvalidToken | ChatMigrated):
        return Undeliverable(str(exc))
    return MaybeSent(str(exc) or type(exc).__name__)


class RetryingLimiter(BaseRateLimiter[str]):
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
        rate_limit_args: str | None,
    ) -> ApiResult:
        if rate_limit_args == FINAL:
            return await callback(*args, **kwargs)
        backoff = self.first_backoff
        for _ in range(self.attempts - 1):
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                delay = seconds(exc.retry_after)
                log.warning("Telegram flood control on %s: waiting %.1f s", endpoint, delay)
                await asyncio.sleep(delay)
            except BadRequest:
                raise  # our mistake, or a message that is gone: the same again fails too
            except NetworkError as exc:  # also TimedOut and 5xx answers
                if not (provably_not_sent(exc) or endpoint in IDEMPOTENT):
                    raise
                log.warning("Telegram %s failed (%s); retrying in %.1f s", endpoint, exc, backoff)
                await asyncio.sleep(backoff)
                backoff *= 2
        return await callback(*args, **kwargs)


def seconds(value: int | float | dt.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
