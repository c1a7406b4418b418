"""Ask each platform who a token belongs to, through the same libraries the adapters use.

A token never appears in what these functions raise or return: python-telegram-bot puts
it in its own messages, so errors are phrased here and anything quoted is redacted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

# What the bot does in a channel: read it, answer there (also in threads), send
# pictures as files with an embed, find its own earlier messages after a restart, and
# be usable through slash commands.
DISCORD_PERMISSIONS = {
    "view_channel": True,
    "send_messages": True,
    "send_messages_in_threads": True,
    "embed_links": True,
    "attach_files": True,
    "read_message_history": True,
    "use_application_commands": True,
}
DISCORD_SCOPES = ("bot", "applications.commands")
TIMEOUT_S = 20.0


class TokenRefused(Exception):
    """The platform answered and said no: the token is wrong (the admin can fix it)."""


class Unreachable(Exception):
    """No answer from the platform: network, proxy, or the platform is down."""


@dataclass(frozen=True)
class TelegramBot:
    username: str
    name: str


@dataclass(frozen=True)
class DiscordApp:
    bot_name: str
    application_id: int
    owner_id: int | None  # the application's owner (a team's owner for a team app)
    owner_name: str
    invite_url: str


async def check_telegram(
    token: str, *, base_url: str, base_file_url: str, timeout: float = TIMEOUT_S
) -> TelegramBot:
    """`getMe` with the token."""
    from telegram import Bot
    from telegram.error import InvalidToken, TelegramError
    from telegram.request import HTTPXRequest

    request = HTTPXRequest(connect_timeout=timeout, read_timeout=timeout)
    bot = Bot(token, base_url=base_url, base_file_url=base_file_url, request=request)
    try:
        await bot.initialize()  # getMe
        me = bot.bot
    except InvalidToken:
        raise TokenRefused(
            "Telegram refused the token: copy it again from @BotFather (/mybots, API Token)"
        ) from None
    except TelegramError as exc:
        raise Unreachable(f"no answer from Telegram at {base_url}: {_redact(exc, token)}") from None
    finally:
        await bot.shutdown()
    return TelegramBot(username=me.username or "", name=me.first_name)


async def check_discord(token: str, *, timeout: float = TIMEOUT_S) -> DiscordApp:
    """The bot user (`/users/@me`) and its application (`/oauth2/applications/@me`)."""
    import aiohttp
    import discord

    # The intents the adapter uses (none is privileged; with none discord.py warns).
    client = discord.Client(intents=discord.Intents(guilds=True))
    try:
        async with asyncio.timeout(timeout):
            await client.login(token)
            app = await client.application_info()
    except discord.LoginFailure:
        raise TokenRefused(
            "Discord refused the token: copy it again from the Developer Portal "
            "(your application, Bot, Reset Token)"
        ) from None
    except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
        reason = _redact(exc, token) or type(exc).__name__
        raise Unreachable(f"no answer from Discord: {reason}") from None
    finally:
        await client.close()
    owner = app.team.owner if app.team is not None and app.team.owner else app.owner
    invite = discord.utils.oauth_url(
        app.id, permissions=discord.Permissions(**DISCORD_PERMISSIONS), scopes=DISCORD_SCOPES
    )
    bot_name = client.user.name if client.user is not None else app.name
    return DiscordApp(
        bot_name=bot_name,
        application_id=app.id,
        owner_id=owner.id if owner is not None else None,
        owner_name=owner.name if owner is not None else "",
        invite_url=invite,
    )


def _redact(exc: BaseException, token: str) -> str:
    return str(exc).replace(token, "<token>") if token else str(exc)
