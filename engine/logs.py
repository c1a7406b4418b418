"""Logging for the engine process and the bot: one stderr handler, text or JSON lines.

`configure_logging` is the one place where handlers and filters are installed. The
engine process calls it at its start (`engine/worker.py`), the bot through
`bot/logs.py`, which adds what only the bot needs; the format chosen for the bot is
exported in `$ATELIER_LOG_FORMAT` so the engine process, which inherits the
environment, writes the same kind of lines. This module imports only the standard
library: the engine process loads it first.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from json import dumps

LEVELS = ("debug", "info", "warning", "error")
LEVEL_ENV = "ATELIER_LOG_LEVEL"
FORMAT_ENV = "ATELIER_LOG_FORMAT"
FORMATS = ("text", "json")


@dataclass(frozen=True)
class Harmless:
    """A library message that says nothing an operator can act on."""

    logger: str  # the logger that emits it (a filter on a logger sees only its own records)
    pattern: str  # searched in the formatted message


HARMLESS = (
    # Logged on every `.to(dtype)` of a diffusers model, also when there is no module
    # to keep in float32 (the `[]`); a model that does list some still warns.
    Harmless(
        "diffusers.models.modeling_utils",
        r"There are modules in \w+ that should be kept in float32: \[\]",
    ),
    # Without torchvision, transformers uses its Pillow image processors: what we want.
    Harmless(
        "transformers.utils.import_utils",
        r"requires torchvision \(not installed\); falling back to",
    ),
    # diffusers still passes this to the hub client on every load of a hub id.
    Harmless("py.warnings", r"`local_dir_use_symlinks` argument is deprecated"),
)

# Loggers that say too much below WARNING; httpx logs every request URL at INFO, and a
# Telegram URL holds the bot token. huggingface_hub 2.x talks through httpx2.
CHATTY = ("httpx", "httpcore", "httpx2", "httpcore2")


def parse_level(name: str) -> int:
    """`info` -> logging.INFO; a ValueError naming the levels for anything else."""
    if name.lower() not in LEVELS:
        raise ValueError(f"{name!r} is not a log level (use {', '.join(LEVELS)})")
    return logging.getLevelNamesMapping()[name.upper()]


def resolve(level: str | None, log_format: str | None) -> tuple[int, bool]:
    """The level and JSON choice from the command line, else the environment, else
    INFO as text. A ValueError names the variable that holds a wrong value.
    """
    level = level or os.environ.get(LEVEL_ENV) or "info"
    log_format = log_format or os.environ.get(FORMAT_ENV) or "text"
    try:
        parsed = parse_level(level)
    except ValueError as exc:
        raise ValueError(f"{LEVEL_ENV}: {exc}") from None
    if log_format.lower() not in FORMATS:
        raise ValueError(f"{FORMAT_ENV}: {log_format!r} is not a log format (use text or json)")
    return parsed, log_format.lower() == "json"


def configure_logging(
    level: int | str,
    *,
    json: bool | None = None,
    process: str = "engine",
    harmless: tuple[Harmless, ...] = HARMLESS,
    filters: tuple[logging.Filter, ...] = (),
) -> None:
    """Send every record of `level` and above to stderr, one line each.

    `json=None` takes the format from `$ATELIER_LOG_FORMAT` (how the engine process
    follows the bot). `harmless` messages are dropped where they are made; `filters`
    see every record that is written. Calling it again replaces the handler it
    installed before.
    """
    if isinstance(level, str):
        level = parse_level(level)
    if json is None:
        json = os.environ.get(FORMAT_ENV, "").lower() == "json"
    os.environ[FORMAT_ENV] = "json" if json else "text"

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _AtelierHandler)]:
        root.removeHandler(old)
    handler = _AtelierHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process) if json else _text_formatter(process))
    for record_filter in filters:
        handler.addFilter(record_filter)
    root.addHandler(handler)
    root.setLevel(level)

    # diffusers and transformers write through handlers of their own (they do not
    # propagate), so their harmless messages are dropped where they are made.
    for logger_name in {h.logger for h in harmless}:
        logger = logging.getLogger(logger_name)
        for old_filter in [f for f in logger.filters if isinstance(f, DropHarmless)]:
            logger.removeFilter(old_filter)
        logger.addFilter(DropHarmless(logger_name, harmless))
    for name in CHATTY:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    logging.captureWarnings(True)  # warnings.warn(...) goes through the handler too


class DropHarmless(logging.Filter):
    def __init__(self, logger_name: str, harmless: tuple[Harmless, ...]) -> None:
        super().__init__()
        self._patterns = [re.compile(h.pattern) for h in harmless if h.logger == logger_name]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(pattern.search(message) for pattern in self._patterns)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, process, logger, message[, exception]."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self._process = process

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "process": self._process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:  # formatted already (the bot's redaction does that)
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return dumps(entry, ensure_ascii=False)


class _AtelierHandler(logging.StreamHandler):
    """Marks the handler `configure_logging` installed, so a second call replaces it."""


def _text_formatter(process: str) -> logging.Formatter:
    # The bot's lines read as before; the engine's say which process wrote them.
    tag = "" if process == "bot" else f"{process}: "
    return logging.Formatter(f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s")
