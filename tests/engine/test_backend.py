"""The backend factory: `local` unless the config says `ray`, and Ray only when asked."""

from __future__ import annotations

import subprocess
import sys

from engine.backend import create_backend
from engine.client import EngineClient
from engine.types import EngineSettings, RaySettings


def test_local_is_the_default_backend() -> None:
    assert isinstance(create_backend(EngineSettings(device="cpu")), EngineClient)


def test_ray_settings_give_the_ray_backend() -> None:
    from engine.ray_client import RayEngineClient

    client = create_backend(EngineSettings(backend="ray", ray=RaySettings(address="auto")))
    assert isinstance(client, RayEngineClient)
    assert client.capacity == 0  # nothing runs before start


def test_a_local_install_never_imports_ray() -> None:
    # The bot, and a local engine started and used, as a single-GPU install runs them.
    code = """
import asyncio, sys
import bot.app, bot.services
from engine.backend import create_backend
from engine.types import EngineSettings

async def main():
    client = create_backend(EngineSettings(device="cpu"))
    await client.start()
    try:
        assert (await client.health())["alive"] is True
        assert client.capacity == 1
    finally:
        await client.close()

asyncio.run(main())
print(sorted(name for name in sys.modules if name.split(".")[0] == "ray"))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=True
    )
    assert result.stdout.strip() == "[]"
