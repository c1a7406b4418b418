"""Everything the commands and adapters share, started and stopped as one."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from bot.avatar import AvatarPresets
from bot.config import Config
from bot.jobs.safety import PromptFilter
from bot.jobs.scheduler import Scheduler
from bot.store import DB_FILENAME, Store
from engine.backend import create_backend
from engine.client import EngineClient

log = logging.getLogger("atelier.services")


@dataclass
class Services:
    config: Config
    store: Store
    engine: EngineClient
    scheduler: Scheduler
    prompt_filter: PromptFilter
    presets: AvatarPresets

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
            engine = create_backend(config.engine_settings(), max_batch=config.engine.max_batch)
            await engine.start()
            undo.push_async_callback(engine.close)
            scheduler = Scheduler(config, store, engine)
            await scheduler.start()
            undo.pop_all()
        log.info("store, engine and queue started (data in %s)", config.data_dir)
        return cls(config, store, engine, scheduler, prompt_filter, presets)

    async def close(self) -> None:
        """Stop in reverse order; each step runs even if an earlier one failed."""
        for name, step in (
            ("scheduler", self.scheduler.stop),
            ("engine", self.engine.close),
            ("store", self.store.close),
        ):
            try:
                await step()
            except Exception:
                log.exception("stopping the %s failed", name)

    def is_admin(self, platform: str, user_id: str) -> bool:
        """Listed in `[admins]` for that platform."""
        admins = {"discord": self.config.admins.discord, "telegram": self.config.admins.telegram}
        return str(user_id) in admins.get(platform, [])
