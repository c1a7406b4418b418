"""Fixtures for tests that configure logging the way `python -m bot` does."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.logs import CHATTY, FORMAT_ENV, HARMLESS


@pytest.fixture
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo `configure_logging`: the root handlers and level, the library loggers'
    filters and levels, and the exported $ATELIER_LOG_FORMAT.
    """
    monkeypatch.delenv(FORMAT_ENV, raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    loggers = [logging.getLogger(name) for name in {h.logger for h in HARMLESS} | set(CHATTY)]
    saved = [(logger, logger.filters[:], logger.level) for logger in loggers]
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for logger, filters, logger_level in saved:
        logger.filters[:] = filters
        logger.setLevel(logger_level)
    logging.captureWarnings(False)
