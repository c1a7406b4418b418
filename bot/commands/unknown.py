"""A command this bot does not have (`/imagin`): one short line pointing to /help."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from bot.commands.base import Context, Outcome, Reply


def unknown_text(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name.lower(), sorted(set(known)), n=1, cutoff=0.6)
    guess = f" Did you mean /{close[0]}?" if close else ""
    return f"I don't know /{name}.{guess} Send /help to see what I can do."


async def run(ctx: Context, name: str, known: Iterable[str]) -> Outcome:
    return Reply(unknown_text(name, known), error=True)
