"""/ban and /unban (admins only): a banned user's commands are refused by the scheduler."""

from __future__ import annotations

from bot.commands.base import Context, Outcome, Reply


def _user_key(ctx: Context, user: str) -> str | None:
    """`12345` means a user of the caller's platform; `telegram:12345` names it."""
    user = user.strip()
    platform, _, user_id = user.rpartition(":")
    platform = platform or ctx.caller.platform
    if not user_id or platform not in ("discord", "telegram", "cli") or len(user) > 80:
        return None
    return f"{platform}:{user_id}"


async def ban(ctx: Context, user: str, reason: str = "") -> Outcome:
    store = ctx.services.store
    if not ctx.caller.is_admin:
        await store.audit(ctx.caller.key, "ban_refused", user.strip()[:80])
        return Reply("Only admins can ban users.", error=True)
    key = _user_key(ctx, user)
    if key is None:
        return Reply("Say whom to ban: a user id, like /ban 123456789.", error=True)
    platform, _, user_id = key.partition(":")
    if key == ctx.caller.key or ctx.services.is_admin(platform, user_id):
        return Reply("Admins cannot be banned.", error=True)
    if await store.is_banned(key):
        return Reply(f"{key} is already banned.")
    reason = reason.strip()[:200]
    await store.ban(key, by=ctx.caller.key, reason=reason)
    await store.audit(ctx.caller.key, "ban", f"{key} {reason}".strip())
    return Reply(f"🚫 Banned {key}. Their new commands will be refused.")


async def unban(ctx: Context, user: str) -> Outcome:
    store = ctx.services.store
    if not ctx.caller.is_admin:
        await store.audit(ctx.caller.key, "unban_refused", user.strip()[:80])
        return Reply("Only admins can unban users.", error=True)
    key = _user_key(ctx, user)
    if key is None:
        return Reply("Say whom to unban: a user id, like /unban 123456789.", error=True)
    if not await store.is_banned(key):
        return Reply(f"{key} is not banned.")
    await store.unban(key)
    await store.audit(ctx.caller.key, "unban", key)
    return Reply(f"✅ Unbanned {key}.")
