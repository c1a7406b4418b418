"""Scaling out on Ray Serve: throughput by replicas, the cost of Ray, loads per job.

Tiny model on the CPU, one torch thread per engine (replica or engine process), on a
local Ray instance started here. Three measurements:

1. Throughput: JOBS one-picture jobs (20 steps) through the Ray backend on 2
   replicas, one batch at a time (1 replica's worth) and two at a time (as the
   scheduler dispatches up to `capacity`), rounds taking turns.
   Goal: 2 replicas >= 1.7x the images/s of 1 (on a 2-core machine).
2. Ray's overhead: the same job, one at a time, through the local backend (engine
   process) and through Ray with 1 replica, taking turns. Goal: < 10 % at 20 steps.
3. Loads per job: JOBS jobs alternating between two copies of the model on 2
   replicas that hold one model each, routed with Serve's model multiplexing (as the
   backend does) and without it (a plain call naming the model: Serve picks a
   replica by queue length alone).

    python bench/scale_out.py [--rounds 3] [--jobs 16] [--steps 20]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Import from the repository root, not this folder (see engine_overhead.py).
if str(Path(__file__).resolve().parent) in sys.path:
    sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import logging
import shutil
import statistics
import tempfile
import time
from dataclasses import replace

from bench.common import BenchModel, build_model, describe, job_spec, summary
from engine.backend import EngineBackend, create_backend
from engine.types import EngineSettings, RaySettings

ROOT = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each")
    parser.add_argument("--reps", type=int, default=10, help="jobs each way for the overhead")
    return parser.parse_args()


def settings(models: dict[str, str], backend: str = "ray", **ray: object) -> EngineSettings:
    options = replace(RaySettings(gpus_per_replica=0, cpus_per_replica=1), **ray)  # type: ignore[arg-type]
    return EngineSettings(device="cpu", models=models, backend=backend, ray=options)  # type: ignore[arg-type]


async def started(engine_settings: EngineSettings) -> EngineBackend:
    client = create_backend(engine_settings, max_batch=1)
    await client.start()
    return client


async def run_jobs(
    client: EngineBackend,
    jobs: list[tuple[str, str, int]],
    steps: int,
    model: BenchModel,
    at_once: int | None = None,
) -> float:
    """Seconds for all (job id, model, seed) jobs, at most `at_once` (default: the
    capacity) at a time, oldest first unless an idle replica holds a waiting job's
    model (the scheduler's rule)."""
    waiting = list(jobs)
    running: set[asyncio.Task[object]] = set()
    started_at = time.perf_counter()
    while waiting or running:
        while waiting and len(running) < (at_once or max(client.capacity, 1)):
            loaded = client.loaded_models()
            job = next((job for job in waiting if job[1] in loaded), waiting[0])
            waiting.remove(job)
            job_id, name, seed = job
            spec = job_spec(model, seed, steps)
            running.add(asyncio.create_task(client.generate(job_id, name, [spec])))
        done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    return time.perf_counter() - started_at


async def throughput(args: argparse.Namespace, model: BenchModel) -> dict[int, list[float]]:
    """Images/s on two replicas, one batch at a time (what one replica gives) and two
    at a time. The rounds take turns on the same replicas, so a shared machine's
    changing load falls on both alike."""
    client = await started(settings({model.name: str(model.path)}, min_replicas=2, max_replicas=2))
    images_per_second: dict[int, list[float]] = {1: [], 2: []}
    try:
        await run_jobs(client, [(f"warm-{i}", model.name, i) for i in range(4)], args.steps, model)
        for round_ in range(args.rounds):
            for replicas in (1, 2):
                jobs = [(f"r{round_}-{replicas}-{i}", model.name, i) for i in range(args.jobs)]
                seconds = await run_jobs(client, jobs, args.steps, model, at_once=replicas)
                images_per_second[replicas].append(args.jobs / seconds)
    finally:
        await client.close()
    return images_per_second


async def overhead(args: argparse.Namespace, model: BenchModel) -> dict[str, list[float]]:
    models = {model.name: str(model.path)}
    local = await started(settings(models, backend="local"))
    ray = await started(settings(models, min_replicas=1, max_replicas=1))
    times: dict[str, list[float]] = {"local": [], "ray, 1 replica": []}
    try:
        for rep in range(-2, args.reps):
            for label, client in (("local", local), ("ray, 1 replica", ray)):
                began = time.perf_counter()
                await client.generate(f"o-{rep}", model.name, [job_spec(model, rep, args.steps)])
                if rep >= 0:
                    times[label].append(time.perf_counter() - began)
    finally:
        await local.close()
        await ray.close()
    return times


async def loads_per_job(
    args: argparse.Namespace, model: BenchModel, other: Path
) -> dict[str, float]:
    from ray import serve

    from engine.ray_cluster import APP_NAME
    from engine.ray_replica import Outcome

    client = await started(
        settings(
            {"a": str(model.path), "b": str(other)},
            min_replicas=2,
            max_replicas=2,
            max_models_per_replica=1,
        )
    )
    steps = 4  # the loads are what counts here, not the steps
    # Two users, one per model, each asking again once served: jobs alternate a, b, a, ...
    pairs = [[(f"m-{i}-{name}", name, i) for name in "ab"] for i in range(args.jobs // 2)]
    loads: dict[str, int] = {}

    async def multiplexed(job_id: str, name: str, seed: int) -> None:
        await client.generate(job_id, name, [job_spec(model, seed, steps)])

    async def plain(job_id: str, name: str, seed: int) -> None:
        stream = serve.get_app_handle(APP_NAME).options(stream=True)
        async for event in stream.generate.remote(job_id, [job_spec(model, seed, steps)], name):
            if isinstance(event, Outcome):
                assert not event.error, event.message
                loads[event.replica.replica_id] = event.replica.loads

    try:
        for pair in pairs:
            await asyncio.gather(*(multiplexed(*job) for job in pair))
        health = await client.health()
        replicas = health["replicas"]
        assert isinstance(replicas, dict)
        before = {replica_id: replica["loads"] for replica_id, replica in replicas.items()}
        for pair in pairs:
            await asyncio.gather(*(plain(*job) for job in pair))
    finally:
        await client.close()
    jobs = 2 * len(pairs)
    return {
        "with multiplexing": sum(before.values()) / jobs,
        "without": sum(count - before.get(rid, 0) for rid, count in loads.items()) / jobs,
    }


async def measure(args: argparse.Namespace, model: BenchModel, other: Path) -> None:
    import ray

    ray.init(
        num_cpus=2,
        num_gpus=0,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=128 * 1024**2,
        logging_level="warning",
    )
    try:
        print(describe(model, args.steps, args.rounds), f"x {args.jobs} jobs, 1 thread each")
        rates = await throughput(args, model)
        for replicas, values in rates.items():
            print(
                f"{replicas} replica(s): median {statistics.median(values):6.2f} images/s"
                f"   min {min(values):6.2f}   max {max(values):6.2f}"
            )
        ratio = statistics.median(rates[2]) / statistics.median(rates[1])
        print(f"2 replicas / 1: {ratio:.2f}x (goal >= 1.7x)")

        times = await overhead(args, model)
        print(f"one job at a time, {args.reps} each, taking turns:")
        for label, seconds in times.items():
            print(summary(label, seconds))
        local, through_ray = times.values()
        extra = statistics.median(b - a for a, b in zip(local, through_ray, strict=True))
        spread = sorted(b - a for a, b in zip(local, through_ray, strict=True))
        print(
            f"Ray's overhead: {extra * 1000:+.1f} ms = {extra / statistics.median(local):+.1%}"
            f" of the local job (round differences {spread[0] * 1000:+.1f} .. "
            f"{spread[-1] * 1000:+.1f} ms; goal < 10 %)"
        )

        for label, value in (await loads_per_job(args, model, other)).items():
            print(f"loads per job, 2 models alternating on 2 replicas, {label}: {value:.3f}")
    finally:
        ray.shutdown()


def main() -> None:
    # Fixed threads: one per engine, in the engine process and in every Ray worker
    # (both inherit this environment); and Ray's workers import this checkout.
    os.environ["OMP_NUM_THREADS"] = "1"
    path = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, path))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    logging.basicConfig(level=logging.WARNING)
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="atelier-bench-") as folder:
        model = build_model(Path(folder), gpu=False)
        other = Path(folder) / "tiny-b"
        shutil.copytree(model.path, other)
        asyncio.run(measure(args, model, other))


if __name__ == "__main__":
    main()
