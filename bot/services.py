"""Everything the commands and adapters share, started and stopped as one."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from bot.avatar import AvatarPresets
from bot.config import Config
from bot.delivery.courier import Courier
from bot.jobs.retention import Retention
from bot.jobs.safety import PromptFilter
from bot.jobs.scheduler import Scheduler
from bot.records import Caller
from bot.store import DB_FILENAME, Store
from engine.backend import EngineBackend, create_backend

log = logging.getLogger("atelier.services")

# Seconds a stopping bot gives the running batch, then the deliveries under way.
DRAIN_TIMEOUT_S = 30.0
DELIVERY_GRACE_S = 10.0


@dataclass
class Services:
    config: Config
    store: Store
    engine: EngineBackend
    scheduler: Scheduler
    courier: Courier
    prompt_filter: PromptFilter
    presets: AvatarPresets
    retention: Retention | None = None
    _closed: bool = field(default=False, repr=False)

    @classmethod
    async def start(cls, config: Config) -> Services:
        """Open the store, spawn the engine process, resume the queue.

        Whatever started is stopped again if a later step fails.
        """
        # Read first: a mistake in these files should not cost an engine start.
        prompt_filter = PromptFilter.from_config(config.safety, base_dir=config.base_dir)
        presets_file = config.avatar.presets_file
        presets = AvatarPresets.load_default(
            config.resolve_path(presets_file) if presets_file else None
        )
        async with contextlib.AsyncExitStack() as undo:
            store = await Store.open(config.data_dir / DB_FILENAME)
            undo.push_async_callback(store.close)
            engine = create_backend(
                config.engine_settings(),
                max_batch=config.engine.engine_max_batch,
                # The engine logs at the bot's level: its download progress and
                # "model ... ready" lines are INFO.
                log_level=logging.getLogger().getEffectiveLevel(),
            )
            await engine.start()
            undo.push_async_callback(engine.close)
            scheduler = Scheduler(config, store, engine)
            await scheduler.start()
            undo.push_async_callback(scheduler.stop)
            courier = Courier(store, scheduler.events, config.data_dir)
            undo.pop_all()
        services = cls(config, store, engine, scheduler, courier, prompt_filter, presets)
        if config.storage.keep_days > 0:
            services.retention = Retention(store, config.data_dir, config.storage.keep_days)
            services.retention.start()
        log.info("store, engine and queue started (data in %s)", config.data_dir)
        return services

    async def drain(self) -> None:
        """Stop taking jobs, let the running batch finish (bounded), send what can be
        sent; what is left stays in the store for the next start. Adapters stop after
        this, so results painted meanwhile still reach their chats."""
        try:
            await self.scheduler.drain(DRAIN_TIMEOUT_S)
        except Exception:
            log.exception("stopping the queue failed")
        await self.courier.close(DELIVERY_GRACE_S)

    async def close(self) -> None:
        """Stop in reverse order; each step runs even if an earlier one failed."""
        if self._closed:
            return
        self._closed = True
        steps = [
            ("queue", self.scheduler.stop),
            ("delivery", self.courier.close),
            ("engine", self.engine.close),
            ("store", self.store.close),
        ]
        if self.retention is not None:
            steps.insert(0, ("retention", self.retention.stop))
        for name, step in steps:
            try:
                await step()
            except Exception:
                log.exception("stopping the %s failed", name)

    def is_admin(self, platform: str, user_id: str) -> bool:
        """Listed in `[admins]` for that platform."""
        admins = {"discord": self.config.admins.discord, "telegram": self.config.admins.telegram}
        return str(user_id) in admins.get(platform, [])

    def caller(
        self,
        platform: str,
        user_id: object,
        name: str,
        *,
        place: str | None = None,
        guild_admin: bool = False,
    ) -> Caller:
        """Who sent a command, with the rights the config gives them."""
        user_id = str(user_id)
        return Caller(
            platform=platform,
            user_id=user_id,
            name=name,
            is_admin=self.is_admin(platform, user_id),
            place=place,
            guild_admin=guild_admin and self.config.admins.discord_guild_administrators,
        )
