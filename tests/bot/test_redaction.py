"""No secret in any log line: messages, arguments and tracebacks alike."""

from __future__ import annotations

import io
import logging

from bot import redaction


def log_through_a_redacting_handler(emit: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redaction.RedactingFilter())
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        emit(logger)  # type: ignore[operator]
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_registered_tokens_and_token_shapes_never_reach_a_log_line() -> None:
    redaction.register("s3cr3t-config-token")
    telegram = "123456789:AAH" + "x" * 32
    webhook = "https://discord.com/api/v10/webhooks/1234567890/aW50ZXJhY3Rpb24.token-here"

    def emit(logger: logging.Logger) -> None:
        logger.warning("token %s in an argument", "s3cr3t-config-token")
        logger.warning("POST https://api.telegram.org/bot%s/sendPhoto", telegram)
        try:
            raise RuntimeError(f"request to {webhook} failed")
        except RuntimeError:
            logger.exception("delivery failed")

    text = log_through_a_redacting_handler(emit)
    assert "s3cr3t-config-token" not in text
    assert telegram not in text and "x" * 32 not in text
    assert "aW50ZXJhY3Rpb24" not in text
    assert "Traceback" in text and "RuntimeError" in text  # the traceback is kept
    assert text.count(redaction.REDACTED) == 3


def test_ordinary_text_is_left_alone() -> None:
    redaction.register("ab")  # too short to be a secret: would blank ordinary words
    assert redaction.redact("a lab at dusk, seed 12345: 30 steps") == (
        "a lab at dusk, seed 12345: 30 steps"
    )
