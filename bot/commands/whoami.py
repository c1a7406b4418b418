"""/whoami: the caller's platform user id, written the way `[admins]` wants it."""

from __future__ import annotations

from bot.commands.base import Context, Outcome, Reply


def admins_line(platform: str, user_id: str) -> str:
    """The config line that makes this user an admin, e.g. `telegram = ["123"]`."""
    return f'{platform} = ["{user_id}"]'


async def run(ctx: Context) -> Outcome:
    caller = ctx.caller
    name = caller.platform.title()
    lines = [
        f"Your {name} user id is {caller.user_id}.",
        "To make someone an admin, list their id in config.toml:",
        "[admins]",
        admins_line(caller.platform, caller.user_id),
    ]
    if caller.is_admin:
        lines.append("You are an admin already.")
    return Reply("\n".join(lines))
