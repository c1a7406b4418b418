"""Remix: run a press again with an edited prompt.

`🔀 Remix` always asks for a new prompt (then re-rolls with it); with remix on in the
caller's /settings, `🔁 Re-roll`, `🎨 Vary` (V1–V4) and the region grid's Repaint ask
too. Adapters ask the way their platform can (Discord: a modal prefilled with the
prompt; Telegram: a ForceReply message and a "keep the prompt" button) and hand the
answer to `run`. A Telegram question waits in the store (`remember` / `take`), keyed
by its message, so the reply still counts after a restart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bot.commands import button_data, buttons, region
from bot.commands.base import Context, Outcome
from bot.store import Store

# Telegram's "keep the prompt" button: the press as it is, without asking again.
KEEP = "k|"
KEEP_PATTERN = r"k\|.{1,60}"
KEEP_LABEL = "✅ Keep the prompt"
_ASKING = {"reroll": "🔁 Re-roll", "vary": "🎨 Vary"}
_SETTING = "remix:"


@dataclass(frozen=True)
class RemixAsk:
    prompt: str  # the prompt as it is, to start editing from
    data: str  # the press to run with the edited prompt
    keep: str  # data that runs it with the prompt as it is
    what: str  # the button's name, for the question

    @property
    def question(self) -> str:
        return (
            f"🔀 Remix ({self.what}): reply to this message with the new prompt.\n"
            f"Now: {self.prompt or '(no prompt)'}"
        )


async def ask(ctx: Context, data: str) -> RemixAsk | None:
    """The question to ask before running press `data`, or None to run it at once."""
    grid = region.decode(data)
    if grid is not None:
        if grid.op != region.REPAINT or grid.cells == 0 or not await _remix_on(ctx):
            return None
        keep = region.encode(region.KEEP, grid.job_id, grid.index, grid.cells)
        return await _ask(ctx, grid.job_id, data, keep, "Repaint")
    pressed = button_data.decode(data)
    if pressed is None:
        return None
    if pressed.action == "remix":
        keep = KEEP + button_data.encode("reroll", pressed.job_id)
        return await _ask(ctx, pressed.job_id, data, keep, "🔀 Remix")
    if pressed.action in _ASKING and await _remix_on(ctx):
        return await _ask(ctx, pressed.job_id, data, KEEP + data, _ASKING[pressed.action])
    return None


async def run(ctx: Context, data: str, prompt: str | None = None) -> Outcome:
    """Press `data` with `prompt` in place of the job's (None: keep the job's)."""
    data = data.removeprefix(KEEP)
    prompt = (prompt or "").strip() or None  # a blank answer keeps the prompt
    if region.decode(data) is not None:
        return await region.click(ctx, data, prompt)
    return await buttons.run(ctx, data, prompt=prompt)


async def _remix_on(ctx: Context) -> bool:
    return (await ctx.services.store.user_settings(ctx.caller.key)).remix


async def _ask(ctx: Context, job_id: str, data: str, keep: str, what: str) -> RemixAsk | None:
    job = await ctx.services.store.get_job(job_id)
    if job is None:
        return None  # the press itself says the picture is gone
    return RemixAsk(job.request.prompt, data, keep, what)


async def remember(store: Store, where: str, data: str, user_key: str) -> None:
    """A question asked at `where` (a platform's message key) about press `data`."""
    await store.set_setting(_SETTING + where, json.dumps({"data": data, "user": user_key}))


async def take(store: Store, where: str, user_key: str) -> str | None:
    """The press a reply at `where` answers, once, and only for the one asked."""
    raw = await store.get_setting(_SETTING + where)
    if not raw:
        return None
    pending = json.loads(raw)
    if pending.get("user") != user_key:
        return None
    await store.set_setting(_SETTING + where, "")
    return str(pending["data"])
