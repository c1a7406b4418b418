"""/model: list the models; `/model NAME` switches the one model for everyone (admins)."""

from __future__ import annotations

from bot.commands import generation
from bot.commands.base import Context, Outcome, Reply
from bot.jobs.admission import Refused
from bot.validation import BadInput

ADMINS_ONLY = "Only admins can switch models."


async def run(ctx: Context, name: str | None = None) -> Outcome:
    services = ctx.services
    if name is None or not name.strip():
        return Reply(_listing(ctx))
    if not ctx.caller.is_admin:
        await services.store.audit(ctx.caller.key, "model_switch_refused", name.strip()[:100])
        return Reply(ADMINS_ONLY, error=True)
    try:
        found, _ = generation.resolve_model(ctx, name)
    except BadInput as exc:
        return Reply(str(exc), error=True)
    if found == services.scheduler.current_model:
        return Reply(f"✅ {found} is already the current model.")
    try:
        # Waits for the running batch; persisted and audit-logged by the scheduler.
        loaded = await services.scheduler.switch_model(found, by=ctx.caller.key)
    except Refused as exc:
        return Reply(f"Could not switch to {found}: {exc}", error=True)
    return Reply(f"✅ Switched to {loaded}. New pictures use it from now on.")


def _listing(ctx: Context) -> str:
    config = ctx.services.config
    current = ctx.services.scheduler.current_model
    lines = ["Models:"]
    for name, model in config.models.items():
        mark = "✅" if name == current else "▫️"
        lines.append(
            f"{mark} {name} — {model.traits.label}, {model.width}x{model.height}, "
            f"{model.default_steps} steps, {model.sampler}"
        )
    if current not in config.models:
        lines.append(f"✅ {current}")
    if ctx.caller.is_admin:
        lines.append("Switch with /model NAME.")
    return "\n".join(lines)
