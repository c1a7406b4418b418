"""What only the Ray backend does: route by model, survive a replica's death, free a
replica on cancel, wait out a lost Serve (test_ray_start.py: what a failed start says).

Two CPU replicas on the session's Ray instance, two copies of the tiny model, and at
most one model per replica, so a batch sent to the wrong replica shows as a reload.
Where a test needs the scheduler, `dispatch` plays its part: at most `capacity` batches
at once, the oldest job first unless an idle replica holds another job's model, and a
crashed job tried once more.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.backend import EngineBackend
from engine.types import EngineCrashed, GeneratedImage, GenerationCancelled, ImageSpec
from tests.engine.backends import Backend, started

ENDLESS_STEPS = 5000


def spec(seed: int, steps: int = 2) -> ImageSpec:
    return ImageSpec(prompt="a red fox", seed=seed, steps=steps, width=64, height=64)


@pytest.fixture(scope="module")
async def backend(
    request: pytest.FixtureRequest, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    other = tmp_path_factory.mktemp("models-b") / "tiny-b"
    shutil.copytree(tiny_model_dir, other)
    models = {"tiny": str(tiny_model_dir), "tiny-b": str(other)}
    async with started("ray", request, models, max_models_per_replica=1) as backend:
        yield backend


async def dispatch(
    client: EngineBackend, jobs: list[tuple[str, str, ImageSpec]]
) -> dict[str, list[GeneratedImage]]:
    """Run (job id, model, spec) jobs as the scheduler does, retrying a crashed one once."""
    waiting = list(jobs)
    tries: dict[str, int] = {}
    delivered: dict[str, list[GeneratedImage]] = {}
    running: set[asyncio.Task[None]] = set()

    async def run(job_id: str, model: str, one: ImageSpec) -> None:
        tries[job_id] = tries.get(job_id, 0) + 1
        try:
            images = await client.generate(job_id, model, [one], timeout=120)
        except EngineCrashed:
            assert tries[job_id] < 2, f"{job_id} crashed twice"
            waiting.insert(0, (job_id, model, one))
            return
        assert job_id not in delivered, f"{job_id} delivered twice"
        delivered[job_id] = images

    while waiting or running:
        while waiting and len(running) < max(client.capacity, 1):
            loaded = client.loaded_models()
            job = next((job for job in waiting if job[1] in loaded), waiting[0])
            waiting.remove(job)
            running.add(asyncio.create_task(run(*job)))
        done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    return delivered


async def replicas(client: EngineBackend) -> dict[str, dict[str, object]]:
    health = await client.health()
    found = health["replicas"]
    assert isinstance(found, dict)
    return found


async def test_two_replicas_make_the_capacity(backend: Backend) -> None:
    assert backend.client.capacity == 2
    assert (await backend.client.health())["alive"] is True


async def test_alternating_models_load_once_per_replica(backend: Backend) -> None:
    client = backend.client
    # Both replicas are empty: the second load goes to the replica the first one left.
    await asyncio.gather(client.load_model("tiny"), client.load_model("tiny-b"))
    assert client.loaded_models() == {"tiny", "tiny-b"}
    for round in range(4):  # two users, one per model, each asking again when served
        seeds = (100 + 2 * round, 101 + 2 * round)
        pictures = await asyncio.gather(
            client.generate(f"job-a{round}", "tiny", [spec(seeds[0])]),
            client.generate(f"job-b{round}", "tiny-b", [spec(seeds[1])]),
        )
        for (image,), model, seed in zip(pictures, ("tiny", "tiny-b"), seeds, strict=True):
            assert image.seed == seed
            assert re.search(r"Model: ([^,\n]+)", image.parameters)[1] == model  # type: ignore[index]
        assert client.loaded_models() == {"tiny", "tiny-b"}

    seen = await replicas(client)
    assert len(seen) == 2
    # Each replica loaded one model, once, and kept it: no batch went to the wrong one.
    assert sorted(replica["loads"] for replica in seen.values()) == [1, 1]
    held = [model for replica in seen.values() for model in replica["models"]]  # type: ignore[attr-defined]
    assert sorted(held) == ["tiny", "tiny-b"]


async def test_cancel_frees_the_replica_for_the_next_job(backend: Backend) -> None:
    client = backend.client
    first = asyncio.create_task(client.generate("job-e1", "tiny", [spec(1, ENDLESS_STEPS)]))
    second = asyncio.create_task(client.generate("job-e2", "tiny-b", [spec(2, ENDLESS_STEPS)]))
    await backend.engine_of("job-e1")
    await backend.engine_of("job-e2")
    assert client.loaded_models() == set()  # both replicas are busy

    await client.cancel("job-e1")
    with pytest.raises(GenerationCancelled):
        await asyncio.wait_for(first, 10)
    # Only the replica that ran job-e1 is free: this runs once that one stopped it.
    (image,) = await asyncio.wait_for(client.generate("job-next", "tiny", [spec(3)]), 30)
    assert image.seed == 3
    assert not second.done()
    await client.cancel("job-e2")
    with pytest.raises(GenerationCancelled):
        await asyncio.wait_for(second, 10)


async def test_killed_replica_fails_its_batch_and_every_job_is_delivered_once(
    backend: Backend,
) -> None:
    client = backend.client
    capacities: list[int] = []
    client.on_capacity_change(lambda: capacities.append(client.capacity))
    victim = asyncio.create_task(client.generate("job-victim", "tiny", [spec(7, ENDLESS_STEPS)]))
    await backend.kill(await backend.engine_of("job-victim"))
    with pytest.raises(EngineCrashed, match="stopped unexpectedly"):
        await asyncio.wait_for(victim, 15)

    jobs = [(f"job-after-{i}", ("tiny", "tiny-b")[i % 2], spec(seed=200 + i)) for i in range(4)]
    delivered = await dispatch(client, jobs)
    assert {job_id: images[0].seed for job_id, images in delivered.items()} == {
        job_id: one.seed for job_id, _, one in jobs
    }
    # Serve noticed the dead replica: the scheduler was told it may run one batch less.
    async with asyncio.timeout(30):
        while 1 not in capacities:
            await asyncio.sleep(0.2)


async def test_lost_serve_control_pauses_dispatch_until_it_is_back(backend: Backend) -> None:
    import ray

    client = backend.client
    capacities: list[int] = []
    client.on_capacity_change(lambda: capacities.append(client.capacity))
    # Serve's controller is what the backend watches the cluster through; without it
    # nothing can be routed or scaled.
    ray.kill(ray.get_actor("SERVE_CONTROLLER_ACTOR", namespace="serve"), no_restart=True)
    async with asyncio.timeout(30):
        while client.capacity != 0:
            await asyncio.sleep(0.1)
    assert (await client.health())["alive"] is False
    # The scheduler dispatches nothing at capacity 0; a job sent anyway fails at once.
    with pytest.raises(EngineCrashed, match="unreachable"):
        await client.generate("job-while-lost", "tiny", [spec(8)])

    async with asyncio.timeout(120):
        while client.capacity < 2:
            await asyncio.sleep(0.2)
    assert capacities[:1] == [0]
    (image,) = await client.generate("job-when-back", "tiny", [spec(9)])
    assert image.seed == 9
