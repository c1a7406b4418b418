"""One running Atelier per test module, connected to a fake Discord on 127.0.0.1
through the real discord.py.

Tests act as Discord users through `FakeDiscord` (slash commands, button clicks,
autocomplete) and look at what the bot did with each interaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from .fake_discord import FakeDiscord
from .harness import RunningBot, Users, discord_section


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    async with fake.running():
        yield fake


@pytest.fixture(scope="module")
def extra_config() -> str:
    """More config sections for this module's bot (a test module may override it)."""
    return ""


@pytest.fixture(scope="module")
def guild_sync() -> bool:
    """Commands synced to the fake guild ([discord] guild_ids); False: globally."""
    return True


@pytest.fixture(scope="module")
async def bot(
    fake: FakeDiscord,
    tiny_model_dir: Path,
    write_config: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
    extra_config: str,
    guild_sync: bool,
) -> AsyncIterator[RunningBot]:
    users = Users(
        alice=fake.add_user("alice"),
        bob=fake.add_user("bob"),
        root=fake.add_user("root"),
        boss=fake.add_user("boss", administrator=True),
    )
    folder = tmp_path_factory.mktemp("discord")
    config_path = write_config(
        folder, discord_section(fake, tiny_model_dir, users, guild_sync=guild_sync) + extra_config
    )
    running = RunningBot(fake, config_path, users)
    await running.start()
    yield running
    await running.stop()
