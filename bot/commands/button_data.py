"""What result buttons carry: an action, the job id and maybe a picture index.

Kept apart from `buttons.py` (which acts on presses) so `render.py` can build buttons
without importing the request-building code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Telegram's callback_data limit; Discord's custom_id allows 100.
MAX_BYTES = 64
ACTIONS = {
    "reroll": "r",
    "vary": "v",
    "upscale": "u",
    "png": "p",
    "delete": "d",
    # The editing loop (bot/commands/region.py, edit.py): open the region picker,
    # zoom out, pan one way, and re-roll with an edited prompt.
    "region": "g",
    "zoom": "z",
    "left": "pl",
    "right": "pr",
    "up": "pu",
    "down": "pd",
    "remix": "m",
    # A /plot: one cell's picture, or all of them in one file.
    "cell": "c",
    "cells": "k",
}
_CODES = {code: action for action, code in ACTIONS.items()}
# Discord adapters can match their persistent buttons' custom_id with this.
PATTERN = r"(?P<code>[rvupdgzmck]|p[lrud]):(?P<job>[A-Za-z0-9_-]{1,40})(?::(?P<index>\d{1,2}))?"
_DATA = re.compile(rf"^{PATTERN}$")


@dataclass(frozen=True)
class ButtonData:
    action: str  # one of ACTIONS
    job_id: str
    index: int | None = None  # picture index within the job, 0-based


def encode(action: str, job_id: str, index: int | None = None) -> str:
    """`r:JOBID`, `v:JOBID:2`...: short enough for Telegram's callback data."""
    code = ACTIONS.get(action)
    if code is None:
        raise ValueError(f"unknown button action {action!r}")
    data = f"{code}:{job_id}" if index is None else f"{code}:{job_id}:{index}"
    if len(data.encode()) > MAX_BYTES or not _DATA.match(data):
        raise ValueError(f"job id {job_id!r} does not fit in button data")
    return data


def decode(data: str) -> ButtonData | None:
    """The button's meaning, or None for data this version does not understand."""
    match = _DATA.match(data.strip()) if isinstance(data, str) else None
    if match is None:
        return None
    index = int(match["index"]) if match["index"] is not None else None
    return ButtonData(_CODES[match["code"]], match["job"], index)
