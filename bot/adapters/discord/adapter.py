"""The Discord adapter: discord.py's gateway and slash commands on one side,
Atelier's platform-neutral commands on the other.

Every interaction is acknowledged at once (a "thinking" deferral, well within
Discord's 3 seconds); the command's outcome then edits that response. Progress and
results of queued jobs are delivered by the courier through `DiscordSender`, from the
job's stored origin, so they arrive after a restart too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord import app_commands

from bot.adapters.discord.origin import DiscordOrigin
from bot.adapters.discord.panel import PANEL_ITEMS, panel_view
from bot.adapters.discord.remix import remix_modal, submitted
from bot.adapters.discord.sender import PREVIEW_INTERVAL_S, DiscordSender
from bot.adapters.discord.slash import add_commands, add_personal_commands
from bot.adapters.discord.surface import InteractionSurface, answer_privately, fit
from bot.adapters.discord.views import RegionButton, ResultButton, result_view
from bot.commands import buttons, region, remix, settings, unknown
from bot.commands.base import Caller, Context, Outcome, Reply
from bot.config import ConfigError
from bot.delivery.outcomes import present

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger("atelier.discord")

PLATFORM = "discord"
SORRY = "⚠️ Something went wrong on our side; please try again."
# Seconds between attempts to reach Discord at start: doubling up to the cap.
CONNECT_BACKOFF_S = (1.0, 60.0)
_UNREACHABLE = (aiohttp.ClientError, OSError, TimeoutError, discord.DiscordServerError)


class AtelierClient(discord.Client):
    """A plain (unsharded) client that hands result-button clicks to its adapter."""

    def __init__(
        self,
        on_button: Callable[[discord.Interaction[Any], str], Awaitable[None]],
        on_panel_click: Callable[[discord.Interaction[Any], str], Awaitable[None]],
        on_region: Callable[[discord.Interaction[Any], str], Awaitable[None]],
        on_modal: Callable[[discord.Interaction[Any]], Awaitable[None]],
        **options: Any,
    ) -> None:
        # Only the guilds intent: nothing privileged, no message content.
        super().__init__(intents=discord.Intents(guilds=True), **options)
        self.on_result_button = on_button
        self.on_panel_click = on_panel_click
        self.on_region_button = on_region
        self.on_modal = on_modal
        self.tree: app_commands.CommandTree[AtelierClient] = app_commands.CommandTree(self)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        await self.on_modal(interaction)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(ResultButton, RegionButton, *PANEL_ITEMS)


class DiscordAdapter:
    def __init__(
        self,
        services: Services,
        *,
        ready_timeout: float = 60.0,
        guild_ready_timeout: float = 2.0,
        connect_backoff: tuple[float, float] = CONNECT_BACKOFF_S,
        status_interval: float = 2.0,
        preview_interval: float = PREVIEW_INTERVAL_S,
    ) -> None:
        self.services = services
        self._ready_timeout = ready_timeout
        # discord.py waits this long after the last GUILD_CREATE before READY.
        self._guild_ready_timeout = guild_ready_timeout
        self._connect_backoff = connect_backoff
        self._status_interval = status_interval
        self._preview_interval = preview_interval
        self.client: AtelierClient | None = None
        self._gateway: asyncio.Task[None] | None = None

    # ---- life ---------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, register the slash commands and return once the gateway is READY.

        Without a network it keeps trying (a box may boot before its network is up);
        a rejected token is one ConfigError line.
        """
        settings = self.services.config.discord
        if not settings.token:
            raise ConfigError("[discord] is enabled but no token: set $DISCORD_TOKEN")
        client = AtelierClient(
            self.on_button,
            self.on_panel_click,
            self.on_region,
            self.on_interaction,
            guild_ready_timeout=self._guild_ready_timeout,
        )
        self.client = client
        add_commands(client.tree, self.run_command, self.services)
        add_personal_commands(client.tree, self.run_command)
        client.tree.on_error = self._on_command_error
        try:
            await self._connect(client, settings.token, settings.guild_ids)
            self.services.courier.register(
                PLATFORM,
                DiscordSender(client, preview_interval=self._preview_interval),
                status_interval=self._status_interval,
            )
            self._gateway = asyncio.create_task(client.connect(), name="discord-gateway")
            await self._wait_until_ready(self._gateway)
        except BaseException:
            await self.stop()
            raise
        log.info("Discord: connected as %s", client.user)

    async def _connect(self, client: AtelierClient, token: str, guild_ids: list[int]) -> None:
        delay, cap = self._connect_backoff
        while True:
            try:
                await client.login(token)
                await self._sync_commands(guild_ids)
                return
            except discord.LoginFailure:
                raise ConfigError("Discord rejected the token (401)") from None
            except _UNREACHABLE as exc:
                log.warning(
                    "Discord is unreachable (%s); trying again in %g s",
                    str(exc) or type(exc).__name__,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(cap, delay * 2)

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
        # discord.py keeps connecting (with its own backoff); commands work once it is.
        log.warning("Discord: gateway not ready after %g s; still connecting", self._ready_timeout)

    async def stop_listening(self) -> None:
        """Interactions keep coming until the gateway closes; new jobs are refused by
        the queue while it drains, with a message saying so."""

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
        private: bool = False,
    ) -> None:
        """Acknowledge, run a command with the caller's context, show its outcome.

        `private` answers only the caller (for /help, /queue...); results of jobs are
        always public.
        """
        origin = await self._acknowledge(interaction, private=private)
        ctx = Context(self.services, self._caller(interaction), origin.to_dict())
        outcome = await command(ctx)
        await present(outcome, InteractionSurface(interaction, private), self.services.courier)

    async def on_button(self, interaction: discord.Interaction[Any], custom_id: str) -> None:
        """A result button: its new picture replaces the click's own (public) response,
        a new message under the old one."""
        try:
            if await self._asked_for_prompt(interaction, custom_id):
                return
            await self.run_command(interaction, lambda ctx: buttons.run(ctx, custom_id))
        except Exception:
            log.exception("Discord: button %s failed", custom_id)
            await answer_privately(interaction, SORRY)

    async def on_region(self, interaction: discord.Interaction[Any], data: str) -> None:
        """A 🖌 Region grid press: toggles edit the grid in place; Repaint answers with
        a new picture, like a result button."""
        try:
            if not region.edits_in_place(data):
                if await self._asked_for_prompt(interaction, data):
                    return
                await self.run_command(interaction, lambda ctx: region.click(ctx, data))
                return
            ctx = Context(self.services, self._caller(interaction), {})
            outcome = await region.click(ctx, data)
            if not isinstance(outcome, Reply) or outcome.error:
                text = outcome.text if isinstance(outcome, Reply) else SORRY
                await answer_privately(interaction, text)
                return
            view = result_view(outcome.buttons) if outcome.buttons else None
            await interaction.response.edit_message(content=fit(outcome.text), view=view)
        except Exception:
            log.exception("Discord: region press %s failed", data)
            await answer_privately(interaction, SORRY)

    async def _asked_for_prompt(self, interaction: discord.Interaction[Any], data: str) -> bool:
        """A remix: the press waits for the prompt, edited in a modal (the modal is
        the interaction's first answer, so it comes before any deferral)."""
        ask = await remix.ask(Context(self.services, self._caller(interaction), {}), data)
        if ask is None:
            return False
        await interaction.response.send_modal(remix_modal(ask))
        return True

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """Every interaction passes here; a remix modal's submit paints its prompt."""
        found = submitted(interaction)
        if found is None:
            return
        data, prompt = found
        try:
            await self.run_command(interaction, lambda ctx: remix.run(ctx, data, prompt))
        except Exception:
            log.exception("Discord: remix of %s failed", data)
            await answer_privately(interaction, SORRY)

    async def on_panel_click(self, interaction: discord.Interaction[Any], data: str) -> None:
        """A press on a /settings panel (ephemeral): the panel is edited in place."""
        try:
            ctx = Context(self.services, self._caller(interaction), {})
            reply = await settings.click(ctx, data)
            if reply.error:
                await answer_privately(interaction, reply.text)
                return
            await interaction.response.edit_message(content=fit(reply.text), view=panel_view(reply))
        except Exception:
            log.exception("Discord: panel press %s failed", data)
            await answer_privately(interaction, SORRY)

    async def _acknowledge(
        self, interaction: discord.Interaction[Any], *, private: bool
    ) -> DiscordOrigin:
        # First thing, before any slow work: Discord drops interactions unanswered
        # for 3 seconds.
        response = await interaction.response.defer(thinking=True, ephemeral=private)
        response_id = response.message_id if response is not None else None
        if response_id is None:
            response_id = (await interaction.original_response()).id
        return DiscordOrigin.from_interaction(interaction, response_id)

    def _caller(self, interaction: discord.Interaction[Any]) -> Caller:
        user = interaction.user
        guild_id = interaction.guild_id
        return self.services.caller(
            PLATFORM,
            user.id,
            user.display_name,
            place=f"discord:guild:{guild_id}" if guild_id is not None else None,
            # Discord resolves the member's permissions in this guild for us.
            guild_admin=guild_id is not None and interaction.permissions.administrator,
        )

    async def _on_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        name = interaction.command.qualified_name if interaction.command else "?"
        if isinstance(error, app_commands.CommandNotFound):
            # Registered by an older version, say, and still in the user's menu.
            tree = self.client.tree if self.client is not None else None
            known = [command.name for command in tree.get_commands()] if tree else []
            await answer_privately(interaction, unknown.unknown_text(error.name, known))
            return
        if isinstance(error, app_commands.TransformerError | app_commands.CheckFailure):
            log.info("Discord: /%s refused input: %s", name, error)
            await answer_privately(interaction, f"⚠️ {error}")
            return
        log.error("Discord: /%s failed", name, exc_info=error)
        if interaction.type is not discord.InteractionType.autocomplete:
            await answer_privately(interaction, SORRY)
