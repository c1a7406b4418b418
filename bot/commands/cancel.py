"""/cancel: the caller's newest job, or a job by id (admins: anyone's; a guild's
administrators: anyone's in their guild)."""

from __future__ import annotations

from bot.commands import plot
from bot.commands.base import Context, Outcome, Reply
from bot.jobs.admission import Refused
from bot.jobs.plots import PLOT_KEY
from bot.records import JobStatus

_ENDED = {
    JobStatus.DELIVERING: "finished",
    JobStatus.DONE: "finished",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "been cancelled",
}


async def run(ctx: Context, job_id: str | None = None) -> Outcome:
    services = ctx.services
    caller = ctx.caller
    if job_id is None or not job_id.strip():
        mine = services.scheduler.jobs_of(caller.key)
        if not mine:
            return Reply("You have no pictures in the queue to cancel.", error=True)
        job = max(mine, key=lambda job: job.created_at)
    else:
        job_id = job_id.strip()
        found = await services.store.get_job(job_id)
        if found is None:
            return Reply(f"There is no job {job_id[:40]!r}. /queue lists yours.", error=True)
        job = found
    if job.user_key != caller.key and not caller.moderates(job.place):
        return Reply("You can only cancel your own jobs.", error=True)
    if PLOT_KEY in job.origin:  # a /plot's cell: the whole plot
        job = await services.store.get_job(str(job.origin[PLOT_KEY])) or job
    if job.status is JobStatus.PLOTTING:
        return await plot.cancel(ctx, job)
    if job.status.finished:
        return Reply(f"Job {job.id} has already {_ENDED[job.status]}.", error=True)
    try:
        # Audit-logged by the scheduler when an admin cancels someone else's job.
        cancelled = await services.scheduler.cancel(job.id, caller)
    except Refused as exc:
        return Reply(str(exc), error=True)
    if not cancelled:
        return Reply(f"Job {job.id} could not be cancelled: it has just finished.", error=True)
    return Reply(f"🛑 Cancelled job {job.id}.")
