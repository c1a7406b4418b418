"""Both engine backends behind one test harness, for the contract tests.

A `Backend` is a started client plus the two things a test does from outside it:
find the engine running a job, and kill it — the engine process (local) or the Ray
Serve replica's actor (ray). Everything else a test does goes through the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest

from engine.backend import EngineBackend, create_backend
from engine.types import EngineSettings, RaySettings

# Two CPU replicas, one torch thread each: what the session's Ray instance holds.
RAY_OPTIONS = RaySettings(
    min_replicas=2, max_replicas=2, gpus_per_replica=0, cpus_per_replica=1, max_models_per_replica=2
)


@dataclass
class Backend:
    kind: str
    client: EngineBackend

    async def engine_of(self, job_id: str, wait: float = 60) -> object:
        """The engine running `job_id` (a pid, or a replica's actor name), once it runs."""
        async with asyncio.timeout(wait):
            while True:
                health = await self.client.health()
                if self.kind == "local" and health["busy"] == job_id:
                    return health["pid"]
                replicas = health.get("replicas") or {}
                assert isinstance(replicas, dict)
                for replica in replicas.values():
                    if replica["busy"] == job_id:
                        return replica["actor"]
                await asyncio.sleep(0.02)

    async def kill(self, engine: object) -> None:
        if self.kind == "local":
            assert isinstance(engine, int)
            os.kill(engine, signal.SIGKILL)
        else:
            import ray

            ray.kill(ray.get_actor(str(engine), namespace="serve"), no_restart=True)

    async def is_gone(self, engine: object, wait: float = 30) -> bool:
        """Whether `engine` is dead and something else serves now (waits a little)."""
        async with asyncio.timeout(wait):
            while True:
                if self.kind == "local":
                    health = await self.client.health()
                    if health["alive"] and health["pid"] != engine:
                        return True
                elif not _actor_exists(str(engine)):
                    return True
                await asyncio.sleep(0.1)


def _actor_exists(name: str) -> bool:
    import ray

    try:
        ray.get_actor(name, namespace="serve")
    except ValueError:
        return False
    return True


def settings_for(kind: str, models: dict[str, str], **ray_options: object) -> EngineSettings:
    ray = replace(RAY_OPTIONS, **ray_options)  # type: ignore[arg-type]
    return EngineSettings(device="cpu", models=models, backend=kind, ray=ray)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def started(
    kind: str, request: pytest.FixtureRequest, models: dict[str, str], **ray_options: object
) -> AsyncIterator[Backend]:
    """A started backend, "local" or "ray" (on the session's Ray instance)."""
    if kind == "ray":
        request.getfixturevalue("ray_instance")
    client = create_backend(settings_for(kind, models, **ray_options))
    await client.start()
    try:
        yield Backend(kind, client)
    finally:
        await client.close()
