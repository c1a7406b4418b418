"""/model, /ban, /unban, /queue, /cancel and /help: who may do what, and what they see."""

from __future__ import annotations

from bot.commands import admin, cancel, help, imagine, model, queue
from bot.commands.base import JobAccepted, Reply
from bot.records import JobStatus

from .harness import ADMIN_ID, Harness


async def test_model_list_marks_the_current_one(harness: Harness) -> None:
    outcome = await model.run(harness.user())
    assert isinstance(outcome, Reply) and not outcome.error
    lines = outcome.text.splitlines()
    assert any(line.startswith("✅ tiny ") for line in lines)
    assert any(line.startswith("▫️ tiny2 ") for line in lines)


async def test_non_admin_cannot_switch_models(harness: Harness) -> None:
    ctx = harness.user()
    outcome = await model.run(ctx, "tiny2")
    assert outcome == Reply("Only admins can switch models.", error=True)
    assert harness.services.scheduler.current_model == "tiny"
    assert await harness.services.store.get_setting("current_model") in (None, "tiny")
    audit = await harness.services.store.recent_audit(5)
    assert any(e.actor == ctx.caller.key and e.action == "model_switch_refused" for e in audit)


async def test_admin_switches_the_model_and_it_persists(harness: Harness) -> None:
    admin_ctx = harness.admin()
    outcome = await model.run(admin_ctx, "TINY2")
    assert outcome == Reply("✅ Switched to tiny2. New pictures use it from now on.")
    try:
        assert harness.services.scheduler.current_model == "tiny2"
        assert await harness.services.store.get_setting("current_model") == "tiny2"
        accepted = await imagine.run(harness.user(), "a fox --steps 1")
        assert isinstance(accepted, JobAccepted) and accepted.job.request.model == "tiny2"
        await harness.drop(accepted)
    finally:
        await model.run(admin_ctx, "tiny")
    assert harness.services.scheduler.current_model == "tiny"


async def test_admin_switch_to_unknown_model(harness: Harness) -> None:
    outcome = await model.run(harness.admin(), "sdxl")
    assert outcome == Reply("Unknown model 'sdxl'. Available: tiny, tiny2, xl, flux.", error=True)
    assert harness.services.scheduler.current_model == "tiny"


async def test_non_admin_cannot_ban(harness: Harness) -> None:
    ctx, target = harness.user(), harness.user("target")
    outcome = await admin.ban(ctx, target.caller.user_id)
    assert outcome == Reply("Only admins can ban users.", error=True)
    assert not await harness.services.store.is_banned(target.caller.key)
    assert isinstance(await imagine.run(target, "a fox --steps 1"), JobAccepted)
    outcome = await admin.unban(ctx, target.caller.user_id)
    assert outcome == Reply("Only admins can unban users.", error=True)


async def test_ban_refuses_new_jobs_until_unban(harness: Harness) -> None:
    admin_ctx, target = harness.admin(), harness.user("spammer")
    outcome = await admin.ban(admin_ctx, target.caller.user_id, "spam")
    assert isinstance(outcome, Reply) and not outcome.error
    assert await harness.services.store.is_banned(target.caller.key)
    refused = await imagine.run(target, "a fox --steps 1")
    assert isinstance(refused, Reply) and refused.error and "banned" in refused.text
    assert await harness.jobs_of(target) == []
    outcome = await admin.unban(admin_ctx, target.caller.key)  # "telegram:ID" works too
    assert isinstance(outcome, Reply) and not outcome.error
    assert isinstance(await imagine.run(target, "a fox --steps 1"), JobAccepted)


async def test_admins_cannot_be_banned(harness: Harness) -> None:
    outcome = await admin.ban(harness.admin(), ADMIN_ID)
    assert outcome == Reply("Admins cannot be banned.", error=True)
    assert not await harness.services.store.is_banned(f"telegram:{ADMIN_ID}")
    assert (await admin.ban(harness.admin(), "  ")).error  # type: ignore[union-attr]


async def test_queue_and_cancel_own_jobs(harness: Harness) -> None:
    ctx, other = harness.user(), harness.user("bob")
    async with harness.paused():
        first = await imagine.run(ctx, "a first fox --steps 2")
        second = await imagine.run(ctx, "a second fox --steps 2")
        theirs = await imagine.run(other, "a hat --steps 2")
        assert isinstance(first, JobAccepted) and isinstance(second, JobAccepted)
        assert isinstance(theirs, JobAccepted)
        assert first.position >= 1 and first.text.startswith("⏳ Queued")

        listing = await queue.run(ctx)
        assert isinstance(listing, Reply)
        assert first.job.id in listing.text and second.job.id in listing.text
        assert theirs.job.id not in listing.text
        assert "position" in listing.text and "admin view" not in listing.text

        overview = await queue.run(harness.admin())
        assert isinstance(overview, Reply) and "admin view" in overview.text
        assert theirs.job.id in overview.text

        # No id: the newest own job.
        assert await cancel.run(ctx) == Reply(f"🛑 Cancelled job {second.job.id}.")
        refused = await cancel.run(ctx, theirs.job.id)
        assert refused == Reply("You can only cancel your own jobs.", error=True)
        assert await cancel.run(harness.admin(), theirs.job.id) == Reply(
            f"🛑 Cancelled job {theirs.job.id}."
        )
        assert await cancel.run(ctx, first.job.id) == Reply(f"🛑 Cancelled job {first.job.id}.")
        again = await cancel.run(ctx, first.job.id)
        assert again == Reply(f"Job {first.job.id} has already been cancelled.", error=True)
    statuses = {job.id: job.status for job in await harness.jobs_of(ctx)}
    assert statuses == {first.job.id: JobStatus.CANCELLED, second.job.id: JobStatus.CANCELLED}


async def test_cancel_with_nothing_queued(harness: Harness) -> None:
    ctx = harness.user()
    assert await cancel.run(ctx) == Reply(
        "You have no pictures in the queue to cancel.", error=True
    )
    outcome = await cancel.run(ctx, "nosuchjob")
    assert isinstance(outcome, Reply) and outcome.error and "nosuchjob" in outcome.text
    listing = await queue.run(ctx)
    assert isinstance(listing, Reply) and "no pictures in the queue" in listing.text


async def test_help_is_short_and_names_the_ranges(harness: Harness) -> None:
    outcome = await help.run(harness.user())
    assert isinstance(outcome, Reply) and not outcome.error
    assert len(outcome.text) < 1500
    for part in ("/imagine", "/vary", "/avatar", "--ar", "--no", "--seed", "(1–10)", "(1–4)"):
        assert part in outcome.text
    assert "/ban" not in outcome.text
    assert "/ban" in (await help.run(harness.admin())).text  # type: ignore[union-attr]
