"""What a Ray backend that cannot start says: one line, and nothing left behind.

These run on the session's Ray instance with no Atelier app deployed (after the
modules that deploy one), except the unreachable-cluster test, which needs a process
without Ray.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from engine.backend import create_backend
from engine.types import EngineError, EngineSettings
from tests.engine.backends import settings_for


@pytest.fixture
def session_ray(request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("ray_instance")


async def start_error(settings: EngineSettings) -> str:
    from ray import serve

    client = create_backend(settings)
    with pytest.raises(EngineError) as caught:
        await client.start()
    assert client.capacity == 0
    await client.close()
    assert "atelier" not in serve.status().applications  # nothing left deployed
    message = str(caught.value)
    assert "\n" not in message
    return message


async def test_replicas_that_cannot_fit_are_one_clear_line(
    session_ray: None, tiny_model_dir: Path
) -> None:
    # The session's Ray has no GPU: one replica per GPU cannot start, and waiting would
    # not help on a Ray instance this machine runs alone.
    settings = settings_for("ray", {"tiny": str(tiny_model_dir)}, gpus_per_replica=1)
    message = await start_error(settings)
    assert message == "[engine.ray] needs 2 GPUs for 2 replica(s); this machine has 0"


async def test_a_replica_that_cannot_start_says_why(
    session_ray: None, tiny_model_dir: Path
) -> None:
    settings = settings_for("ray", {"tiny": str(tiny_model_dir)}, min_replicas=1, max_replicas=1)
    settings = EngineSettings(device="tpu", backend="ray", ray=settings.ray)
    message = await start_error(settings)
    assert (
        message
        == "the Ray engine did not start: unknown device 'tpu'; use auto, cpu, cuda or cuda:N"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_cluster_at_start_is_one_clear_line() -> None:
    # In a fresh process: this one already has the session's Ray, which a client reuses.
    code = f"""
import asyncio
from engine.backend import create_backend
from engine.types import EngineError, EngineSettings, RaySettings

async def main():
    for address in ("127.0.0.1:{free_port()}", "ray://127.0.0.1:{free_port()}"):
        client = create_backend(EngineSettings(backend="ray", ray=RaySettings(address=address)))
        try:
            await client.start()
        except EngineError as exc:
            print(exc)

asyncio.run(main())
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("cannot reach the Ray cluster at ")
        assert "refused" in line.lower()
