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
    async def stop_listening(self) -> None: ...
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
    adapters = {platform: cls(services) for platform, cls in classes.items()}
    try:
        await _start_all(adapters)
        log.info("Atelier is running; stop it with Ctrl-C or SIGTERM")
        await _wait_for_stop(stop or asyncio.Event())
    finally:
        # No new commands, the running batch finishes and its results go out, then the
        # adapters close: what is still undelivered goes out after the next start.
        await _each(adapters, "stop_listening")
        await services.drain()
        await _each(adapters, "stop")
        await services.close()
        log.info("Atelier stopped")


async def _start_all(adapters: dict[str, Adapter]) -> None:
    """Together: a platform still waiting for its network does not hold up the other;
    one that fails (a rejected token) stops the others' start too."""
    tasks = [asyncio.create_task(adapter.start()) for adapter in adapters.values()]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _each(adapters: dict[str, Adapter], step: str) -> None:
    for platform, adapter in reversed(adapters.items()):
        try:
            await getattr(adapter, step)()
        except Exception:
            log.exception("%s of the %s adapter failed", step, platform)


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
