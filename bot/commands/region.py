"""Vary region: a 3x3 grid of cell toggles over a result, then Repaint.

The whole selection lives in the button data (`rg:JOB:INDEX:CELLS`, CELLS a 9-bit
set, bit n = cell n counted row by row from the top left), and each toggle names the
selection it makes, so the grid keeps working after a restart and presses may come
in any order. Toggles, Back and Cancel edit the grid message in place
(`edits_in_place`); Repaint queues an inpaint job (`bot/commands/edit.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.commands import canvas, edit
from bot.commands.base import Button, Context, Outcome, Reply
from bot.records import Job

SHOW, REPAINT, KEEP, CANCEL = "rg", "rp", "rk", "rx"
# Adapters route presses with this (Discord DynamicItem template, Telegram handler).
PATTERN = r"(?P<op>r[gpkx]):(?P<job>[A-Za-z0-9_-]{1,40}):(?P<index>\d{1,2}):(?P<cells>\d{1,3})"
_DATA = re.compile(rf"^{PATTERN}$")
INTRO = "🖌 Choose the cells to repaint, then press Repaint."
NOTHING_CHOSEN = "Choose at least one cell to repaint."
CLOSED = "🖌 Region closed."
OUT_OF_DATE = "That grid no longer works: press 🖌 Region again."
REPAINT_LABEL = "Repaint"
BACK_LABEL = "⬅️ Back"
CANCEL_LABEL = "✖️ Cancel"


@dataclass(frozen=True)
class Press:
    op: str  # SHOW, REPAINT, KEEP (repaint with the prompt as it is) or CANCEL
    job_id: str
    index: int
    cells: int


def encode(op: str, job_id: str, index: int, cells: int) -> str:
    data = f"{op}:{job_id}:{index}:{cells}"
    if len(data.encode()) > 64 or not _DATA.match(data):
        raise ValueError(f"job id {job_id!r} does not fit in button data")
    return data


def decode(data: str) -> Press | None:
    match = _DATA.match(data) if isinstance(data, str) else None
    if match is None:
        return None
    cells = int(match["cells"])
    if cells > canvas.ALL_CELLS:
        return None
    return Press(match["op"], match["job"], int(match["index"]), cells)


def is_region_data(data: str) -> bool:
    return decode(data) is not None


def edits_in_place(data: str) -> bool:
    """Toggles, Back and Cancel change the grid message itself; Repaint answers anew."""
    press = decode(data)
    return press is not None and press.op in (SHOW, CANCEL)


def grid(job_id: str, index: int, cells: int = 0) -> Reply:
    """The grid message: a map of the chosen cells and a button per cell."""
    rows: list[list[Button]] = []
    picture: list[str] = []
    for row in range(canvas.GRID):
        buttons, marks = [], []
        for column in range(canvas.GRID):
            cell = row * canvas.GRID + column
            on = bool(cells >> cell & 1)
            label = f"✅ {cell + 1}" if on else f"⬜ {cell + 1}"
            buttons.append(Button(label, encode(SHOW, job_id, index, cells ^ (1 << cell))))
            marks.append("✅" if on else "⬜")
        rows.append(buttons)
        picture.append("".join(marks))
    rows.append(
        [
            Button(REPAINT_LABEL, encode(REPAINT, job_id, index, cells)),
            Button(BACK_LABEL, encode(SHOW, job_id, index, 0)),
            Button(CANCEL_LABEL, encode(CANCEL, job_id, index, cells)),
        ]
    )
    return Reply("\n".join([INTRO, *picture]), buttons=rows)


async def open_grid(ctx: Context, job: Job, index: int) -> Outcome:
    """The `🖌 Region` result button: a fresh grid for picture `index`."""
    if edit.picture_path(ctx, job, index) is None:
        return Reply(edit.expired(ctx), error=True)
    return grid(job.id, index)


async def click(ctx: Context, data: str, prompt: str | None = None) -> Outcome:
    """A press on the grid; `prompt` replaces the job's (a remix) on Repaint."""
    press = decode(data)
    if press is None:
        return Reply(OUT_OF_DATE, error=True)
    if press.op == CANCEL:
        return Reply(CLOSED)
    job = await ctx.services.store.get_job(press.job_id)
    if job is None:
        return Reply("That picture is no longer available.", error=True)
    if press.op == SHOW:
        return grid(job.id, press.index, press.cells)
    if press.cells == 0:
        return Reply(NOTHING_CHOSEN, error=True)
    return await edit.repaint_cells(ctx, job, press.index, press.cells, prompt)
