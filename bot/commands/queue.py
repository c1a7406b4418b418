"""/queue: where the caller's jobs are; admins also see the whole queue."""

from __future__ import annotations

from bot.commands.base import Context, Outcome, Reply
from bot.jobs.limits import format_wait
from bot.records import Job, JobStatus

# Jobs listed by name in the admins' overview; the rest are counted.
_OVERVIEW_ROWS = 10


def _describe(job: Job) -> str:
    prompt = job.request.prompt or "(no prompt)"
    return prompt if len(prompt) <= 40 else prompt[:39].rstrip() + "…"


async def run(ctx: Context) -> Outcome:
    scheduler = ctx.services.scheduler
    mine = sorted(scheduler.jobs_of(ctx.caller.key), key=lambda job: job.created_at)
    lines = []
    if not mine:
        lines.append("You have no pictures in the queue. Start one with /imagine.")
    else:
        lines.append("Your jobs:")
        for job in mine:
            place = scheduler.position(job.id)
            if job.status == JobStatus.RUNNING or place is None or place[0] == 0:
                state = "🎨 painting now"
            else:
                position, eta = place
                about = f", about {format_wait(eta)}" if eta is not None else ""
                switch = ", after a model switch" if scheduler.waits_for_model(job) else ""
                state = f"⏳ position {position}{about}{switch}"
            lines.append(f"• {job.id} — {state} — {_describe(job)}")
        lines.append("Cancel one with /cancel (your newest) or /cancel ID.")
    if not (ctx.caller.is_admin or ctx.caller.guild_admin):
        return Reply("\n".join(lines))
    lines.append("")
    lines.extend(await _overview(ctx))
    # Other people's prompts: for the admin's eyes only, not the group's.
    return Reply("\n".join(lines), private=True)


async def _overview(ctx: Context) -> list[str]:
    """Every waiting and running job; a guild's administrators see their guild's."""
    caller = ctx.caller
    jobs = await ctx.services.store.jobs_with_status(JobStatus.RUNNING, JobStatus.QUEUED)
    jobs = [job for job in jobs if caller.moderates(job.place)]
    running = [job for job in jobs if job.status == JobStatus.RUNNING]
    queued = [job for job in jobs if job.status == JobStatus.QUEUED]
    people = len({job.user_key for job in jobs})
    where = "admin view" if caller.is_admin else "this server"
    lines = [
        f"Queue ({where}): {len(running)} painting, {len(queued)} waiting, "
        f"from {people} {'person' if people == 1 else 'people'}."
    ]
    for job in (running + queued)[:_OVERVIEW_ROWS]:
        mark = "🎨" if job.status == JobStatus.RUNNING else "⏳"
        lines.append(f"{mark} {job.id} — {job.user_name} ({job.platform}) — {_describe(job)}")
    if len(jobs) > _OVERVIEW_ROWS:
        lines.append(f"… and {len(jobs) - _OVERVIEW_ROWS} more.")
    return lines
