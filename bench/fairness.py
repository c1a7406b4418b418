"""40 tiny jobs from 4 users: FIFO one by one against Atelier's fair, batched queue.

The users ask in bursts (Ann's 10, then Bob's 10, Cat's 10, Dan's 10), all before the
engine starts on them. Three ways to serve them through the same engine process:
- FIFO one by one: `engine.generate` per job in arrival order, pictures saved to disk;
- fair, one by one: the real Scheduler (SQLite, events, files) with max_batch 1;
- fair + batched: the real Scheduler with max_batch 4.
Printed: the time for all 40, the ratio to FIFO, and how long each user waited for
their first picture; medians over rounds that take turns, as a shared machine's
speed drifts.

    python bench/fairness.py [--steps 4] [--max-batch 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bot.config import (
    Config,
    EngineConfig,
    LimitsConfig,
    ModelConfig,
    StorageConfig,
)
from bot.jobs.events import Finished, JobEvent
from bot.jobs.pictures import image_specs, save_pictures
from bot.jobs.scheduler import Scheduler
from bot.records import Caller, GenerationRequest, Job
from bot.store import DB_FILENAME, Store
from engine.client import EngineClient

USERS = ["Ann", "Bob", "Cat", "Dan"]
JOBS_PER_USER = 10
TINY_MODEL = Path(__file__).resolve().parent.parent / "tests" / "tiny_model.py"


def tiny_model_builder() -> Callable[[Path], Path]:
    """`build_tiny_pipeline` from the tests, loaded by path: putting tests/ on the
    import path would let its `bot` test package hide the real one."""
    spec = importlib.util.spec_from_file_location("tiny_model", TINY_MODEL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_tiny_pipeline


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--max-batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def make_config(folder: Path, model_dir: Path, max_batch: int) -> Config:
    return Config(
        engine=EngineConfig(default_model="tiny", device="cpu", max_batch=max_batch),
        models={"tiny": ModelConfig(source=str(model_dir), width=64, height=64)},
        limits=LimitsConfig(jobs_per_minute=1000, max_queued_per_user=100, max_queue=1000),
        storage=StorageConfig(path=str(folder / "data")),
        base_dir=folder,
    )


def workload(steps: int) -> list[tuple[Caller, GenerationRequest]]:
    """Each user's burst of 10, one user after another."""
    jobs = []
    for number, name in enumerate(USERS):
        caller = Caller("telegram", str(number + 1), name)
        for n in range(JOBS_PER_USER):
            request = GenerationRequest(
                kind="imagine",
                prompt=f"a red fox in a blue hat, portrait {n}",
                negative="blurry",
                model="tiny",
                seed=number * 100 + n,
                steps=steps,
                cfg=7.0,
                width=64,
                height=64,
                sampler="Euler a",
            )
            jobs.append((caller, request))
    return jobs


@dataclasses.dataclass
class Run:
    total: float
    first_picture: dict[str, float]  # user -> seconds until their first picture


async def fifo(engine: EngineClient, config: Config, steps: int) -> Run:
    begin = time.perf_counter()
    first: dict[str, float] = {}
    for number, (caller, request) in enumerate(workload(steps)):
        specs = await image_specs(request, config.data_dir)
        images = await engine.generate(f"fifo-{number}", "tiny", specs)
        await save_pictures(config.data_dir, f"fifo-{number}", images, "block")
        first.setdefault(caller.name, time.perf_counter() - begin)
    return Run(time.perf_counter() - begin, first)


async def fair(engine: EngineClient, config: Config, steps: int) -> Run:
    store = await Store.open(config.data_dir / DB_FILENAME)
    scheduler = Scheduler(config, store, engine)
    finished: dict[str, float] = {}
    first: dict[str, float] = {}
    all_done = asyncio.Event()
    begin = 0.0

    async def listen(job: Job, event: JobEvent) -> None:
        if isinstance(event, Finished):
            finished[job.id] = time.perf_counter() - begin
            first.setdefault(job.user_name, finished[job.id])
            if len(finished) == len(USERS) * JOBS_PER_USER:
                all_done.set()

    scheduler.add_listener("telegram", listen)
    for caller, request in workload(steps):
        await scheduler.submit(caller, request, {})
    begin = time.perf_counter()
    await scheduler.start()
    await all_done.wait()
    total = time.perf_counter() - begin
    await scheduler.stop()
    await store.close()
    return Run(total, first)


async def main() -> None:
    args = parse_args()
    for name in ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY"):
        os.environ.setdefault(name, "error")  # random weights: expected warnings
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    labels = ["FIFO, one by one", "fair, one by one", f"fair + batched ({args.max_batch})"]
    runs: dict[str, list[Run]] = {label: [] for label in labels}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_dir = tiny_model_builder()(folder / "tiny")
        engine = EngineClient(
            make_config(folder, model_dir, args.max_batch).engine_settings(),
            max_batch=args.max_batch,
        )
        await engine.start()
        try:
            # Warm-up: model load and first calls at both batch sizes.
            warm = await image_specs(workload(args.steps)[0][1], folder)
            await engine.generate("warm-1", "tiny", warm)
            await engine.generate("warm-n", "tiny", warm * args.max_batch)
            for number in range(args.rounds):
                # Take turns, so a slow spell of the machine does not hit one way only.
                order = labels[number % 3 :] + labels[: number % 3]
                for label in order:
                    place = folder / f"{number}-{labels.index(label)}"
                    if label == labels[0]:
                        config = make_config(place, model_dir, 1)
                        run = await fifo(engine, config, args.steps)
                    else:
                        batch = 1 if label == labels[1] else args.max_batch
                        config = make_config(place, model_dir, batch)
                        run = await fair(engine, config, args.steps)
                    runs[label].append(run)
        finally:
            await engine.close()

    print(
        f"{len(USERS)} users x {JOBS_PER_USER} jobs, tiny model 64x64, {args.steps} steps, "
        f"Euler a, CPU; medians of {args.rounds} rounds"
    )
    baseline = statistics.median(run.total for run in runs[labels[0]])
    for label in labels:
        total = statistics.median(run.total for run in runs[label])
        firsts = {
            user: statistics.median(run.first_picture[user] for run in runs[label])
            for user in USERS
        }
        shown = "  ".join(f"{user} {firsts[user]:5.1f} s" for user in USERS)
        print(
            f"{label:<20} all 40 in {total:6.1f} s ({baseline / total:4.2f}x FIFO's speed)"
            f"   first picture: {shown}   (mean {statistics.mean(firsts.values()):5.1f} s)"
        )


if __name__ == "__main__":
    asyncio.run(main())
