"""The Discord adapter: discord.py's gateway and slash commands on one side,
Atelier's platform-neutral commands on the other.

Every interaction is acknowledged at once (a "thinking" deferral, well within
Discord's 3 seconds); the command's outcome then edits that response. Progress and
results of queued jobs are delivered by `Delivery` from the job's stored origin, so
they arrive after a restart too.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.adapters.discord.delivery import Delivery
from bot.adapters.discord.origin import DiscordOrigin
from bot.adapters.discord.slash import add_commands
from bot.adapters.discord.views import ResultButton, result_view
from bot.commands import buttons
from bot.commands.base import (
    Caller,
    Context,
    DeleteResult,
    JobAccepted,
    Outcome,
    Reply,
    SendFile,
)
from bot.config import ConfigError

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger("atelier.discord")

PLATFORM = "discord"
SORRY = "⚠️ Something went wrong on our side; please try again."
# Discord refuses message content longer than this.
MAX_CONTENT = 2000
# interaction.extras key: the deferred response is ephemeral (only the user sees it).
_PRIVATE = "atelier_private"


class AtelierClient(discord.Client):
    """A plain (unsharded) client that knows its adapter, for the button callbacks."""

    def __init__(self, adapter: DiscordAdapter, **options: Any) -> None:
        # Only the guilds intent: nothing privileged, no message content.
        super().__init__(intents=discord.Intents(guilds=True), **options)
        self.adapter = adapter
        self.tree: app_commands.CommandTree[AtelierClient] = app_commands.CommandTree(self)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(ResultButton)


class DiscordAdapter:
    def __init__(
        self,
        services: Services,
        *,
        ready_timeout: float = 60.0,
        guild_ready_timeout: float = 2.0,
    ) -> None:
        self.services = services
        self._ready_timeout = ready_timeout
        # discord.py waits this long after the last GUILD_CREATE before READY.
        self._guild_ready_timeout = guild_ready_timeout
        self.client: AtelierClient | None = None
        self.delivery: Delivery | None = None
        self._gateway: asyncio.Task[None] | None = None

    # ---- life ---------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, register the slash commands and return once the gateway is READY."""
        settings = self.services.config.discord
        if not settings.token:
            raise ConfigError("[discord] is enabled but no token: set $DISCORD_TOKEN")
        client = AtelierClient(self, guild_ready_timeout=self._guild_ready_timeout)
        self.client = client
        add_commands(client.tree, self)
        client.tree.on_error = self._on_command_error
        self.delivery = Delivery(client, self.services.config.data_dir)
        try:
            await client.login(settings.token)
            await self._sync_commands(settings.guild_ids)
            self.services.scheduler.add_listener(PLATFORM, self.delivery.on_job_event)
            self._gateway = asyncio.create_task(client.connect(), name="discord-gateway")
            await self._wait_until_ready(self._gateway)
        except discord.LoginFailure:
            await self.stop()
            raise ConfigError("Discord refused the token: check $DISCORD_TOKEN") from None
        except BaseException:
            await self.stop()
            raise
        log.info("Discord: connected as %s", client.user)

    async def _wait_until_ready(self, gateway: asyncio.Task[None]) -> None:
        assert self.client is not None
        ready = asyncio.create_task(self.client.wait_until_ready())
        done, _ = await asyncio.wait(
            {ready, gateway}, timeout=self._ready_timeout, return_when="FIRST_COMPLETED"
        )
        if ready in done:
            return
        ready.cancel()
        error = gateway.exception() if gateway in done else None
        if error is not None:
            raise error
        raise TimeoutError(f"Discord gateway not ready within {self._ready_timeout:g} s")

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self._gateway is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._gateway
        self._gateway = None

    async def _sync_commands(self, guild_ids: list[int]) -> None:
        assert self.client is not None
        tree = self.client.tree
        if not guild_ids:
            # Global commands can take a while to show up in every server.
            await tree.sync()
            return
        for guild_id in guild_ids:
            guild = discord.Object(guild_id)
            tree.copy_global_to(guild=guild)
            await tree.sync(guild=guild)

    # ---- commands -------------------------------------------------------------------

    async def run_command(
        self,
        interaction: discord.Interaction[Any],
        command: Callable[[Context], Awaitable[Outcome]],
        *,
        private: bool = False,
    ) -> None:
        """Acknowledge, run a command with the caller's context, show its outcome.

        `private` answers only the caller (for /help, /queue...); results of jobs are
        always public.
        """
        origin = await self._acknowledge(interaction, private=private)
        ctx = Context(self.services, self._caller(interaction), origin.to_dict())
        await self._show(interaction, origin, await command(ctx))

    async def on_button(self, interaction: discord.Interaction[Any], custom_id: str) -> None:
        """A result button: its job's new picture arrives as a new message."""
        try:
            origin = await self._acknowledge(interaction, private=True, result_as_followup=True)
            ctx = Context(self.services, self._caller(interaction), origin.to_dict())
            await self._show(interaction, origin, await buttons.run(ctx, custom_id))
        except Exception:
            log.exception("Discord: button %s failed", custom_id)
            await self._answer_privately(interaction, SORRY)

    async def _acknowledge(
        self,
        interaction: discord.Interaction[Any],
        *,
        private: bool,
        result_as_followup: bool = False,
    ) -> DiscordOrigin:
        # First thing, before any slow work: Discord drops interactions unanswered
        # for 3 seconds.
        response = await interaction.response.defer(thinking=True, ephemeral=private)
        interaction.extras[_PRIVATE] = private
        response_id = response.message_id if response is not None else None
        if response_id is None:
            response_id = (await interaction.original_response()).id
        return DiscordOrigin.from_interaction(
            interaction, response_id, result_as_followup=result_as_followup
        )

    def _caller(self, interaction: discord.Interaction[Any]) -> Caller:
        user = interaction.user
        return Caller(PLATFORM, str(user.id), user.display_name, self._is_admin(interaction))

    def _is_admin(self, interaction: discord.Interaction[Any]) -> bool:
        if self.services.is_admin(PLATFORM, str(interaction.user.id)):
            return True
        # Discord resolves the member's permissions in this guild for us.
        return (
            self.services.config.admins.discord_guild_administrators
            and interaction.guild_id is not None
            and interaction.permissions.administrator
        )

    async def _show(
        self, interaction: discord.Interaction[Any], origin: DiscordOrigin, outcome: Outcome
    ) -> None:
        assert self.delivery is not None
        match outcome:
            case JobAccepted(job=job, text=text):
                await self.delivery.show_status(job, origin, text)
            case Reply(error=True, text=text):
                await self._answer_privately(interaction, text)
            case Reply(text=text, buttons=rows):
                view = result_view(rows) if rows else discord.utils.MISSING
                await interaction.edit_original_response(content=_fit(text), view=view)
            case SendFile(path=path, filename=filename):
                data = await asyncio.to_thread(Path(path).read_bytes)
                file = discord.File(io.BytesIO(data), filename=filename)
                await interaction.edit_original_response(content=None, attachments=[file])
            case DeleteResult():
                if interaction.message is not None:
                    await interaction.message.delete()
                await interaction.delete_original_response()

    async def _answer_privately(self, interaction: discord.Interaction[Any], text: str) -> None:
        """One short message only the user sees, whatever the deferral was."""
        text = _fit(text)
        try:
            if not interaction.response.is_done():
                await interaction.response.send_message(text, ephemeral=True)
            elif interaction.extras.get(_PRIVATE):
                await interaction.edit_original_response(content=text)
            else:
                # The first followup after a public deferral would replace the public
                # "thinking" message (and stay public): remove that message first.
                await interaction.delete_original_response()
                await interaction.followup.send(text, ephemeral=True)
        except discord.HTTPException as exc:
            log.warning("Discord: could not answer interaction %s: %s", interaction.id, exc)

    async def _on_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        name = interaction.command.qualified_name if interaction.command else "?"
        if isinstance(error, app_commands.TransformerError | app_commands.CheckFailure):
            log.info("Discord: /%s refused input: %s", name, error)
            await self._answer_privately(interaction, f"⚠️ {error}")
            return
        log.error("Discord: /%s failed", name, exc_info=error)
        if interaction.type is not discord.InteractionType.autocomplete:
            await self._answer_privately(interaction, SORRY)


def _fit(text: str) -> str:
    return text if len(text) <= MAX_CONTENT else text[: MAX_CONTENT - 1] + "…"
