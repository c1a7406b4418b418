"""The running bot: services, then every enabled chat adapter, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from collections.abc import Callable
from typing import Protocol

from bot.config import Config, ConfigError
from bot.services import Services
from bot.store import StoreError
from engine.types import EngineError

log = logging.getLogger("atelier.app")

# Platform -> (module, class). Imported only when enabled: each pulls in its library.
ADAPTERS: dict[str, tuple[str, str]] = {
    "telegram": ("bot.adapters.telegram", "TelegramAdapter"),
    "discord": ("bot.adapters.discord", "DiscordAdapter"),
}


class Adapter(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


AdapterFactory = Callable[[Services], Adapter]


def enabled_platforms(config: Config) -> list[str]:
    return [name for name in ADAPTERS if getattr(config, name).enabled]


def adapter_class(platform: str) -> AdapterFactory:
    """The adapter's class; a clear ConfigError when it cannot be imported."""
    module_name, class_name = ADAPTERS[platform]
    try:
        module = importlib.import_module(module_name)
        factory: AdapterFactory = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"[{platform}] is enabled but the {platform} adapter is not available "
            f"({module_name}.{class_name}: {exc})"
        ) from exc
    return factory


async def run(config: Config, *, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or until `stop` is set), then stop in reverse order."""
    config.require_adapters()
    classes = {platform: adapter_class(platform) for platform in enabled_platforms(config)}
    try:
        services = await Services.start(config)
    except (StoreError, EngineError) as exc:
        # An unusable data folder or device: one line for the operator, no traceback.
        raise ConfigError(str(exc)) from exc
    started: list[tuple[str, Adapter]] = []
    try:
        for platform, cls in classes.items():
            adapter = cls(services)
            await adapter.start()
            started.append((platform, adapter))
            log.info("%s adapter started", platform)
        log.info("Atelier is running; stop it with Ctrl-C or SIGTERM")
        await _wait_for_stop(stop or asyncio.Event())
    finally:
        for platform, adapter in reversed(started):
            try:
                await adapter.stop()
            except Exception:
                log.exception("stopping the %s adapter failed", platform)
        await services.close()
        log.info("Atelier stopped")


async def _wait_for_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    handled = []
    for sig in signals:
        # Not on every platform (Windows): Ctrl-C then ends asyncio.run instead.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
