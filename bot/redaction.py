"""Keeping secrets out of every line Atelier writes.

Tokens reach log lines in ways nobody writes on purpose: a library logs a request URL
(Telegram's carries the bot token, a Discord webhook's the interaction token), an
exception quotes it (python-telegram-bot's `InvalidToken`), a traceback shows a local.
`RedactingFilter` sits on the log handlers (`bot/logs.py` puts it there) and rewrites
each record, traceback included, before it is written; `route_uncaught` sends
uncaught exceptions through logging, so they are redacted too.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from types import TracebackType

REDACTED = "<redacted>"
# Shapes of secrets that are not in the config: interaction tokens in Discord webhook
# URLs, and any Telegram bot token.
_PATTERNS = (
    re.compile(r"(/webhooks/\d+/)[\w.-]+"),
    re.compile(r"(?<!\d)\d{5,}:[\w-]{30,}"),
)
_MIN_SECRET_LENGTH = 6  # shorter strings would blank out ordinary words

_secrets: set[str] = set()


def register(secret: str) -> None:
    """From now on `secret` never appears in a log line."""
    if len(secret) >= _MIN_SECRET_LENGTH:
        _secrets.add(secret)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and record.exc_info[0] is not None:
            # Formatted here, once, so the traceback text can be cleaned too.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def route_uncaught() -> None:
    """Uncaught exceptions (main thread, other threads) go through logging, whose
    handlers redact, instead of straight to stderr."""
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    logging.getLogger("atelier").critical("uncaught error", exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("atelier").error(
        "uncaught error in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
    )
