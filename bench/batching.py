"""Throughput of 8 compatible jobs run as one batch against the same 8 one by one.

Both go through the engine process (`EngineClient`, max_batch 8), as the scheduler
runs them: one `generate` call with 8 specs, then 8 calls with one spec each.

    python bench/batching.py              # tiny model on the CPU
    python bench/batching.py --gpu        # SD 1.5 architecture, 512x512, fp16
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts this folder first on the import path, where a module
# could stand in for a standard one; import from the repository root instead. (The
# spawned engine process runs this file again, with the path already changed.)
if str(Path(__file__).resolve().parent) in sys.path:
    sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import logging
import statistics
import tempfile
import time

from bench.common import build_model, describe, engine_settings, job_spec, summary
from engine.client import EngineClient

JOBS = 8


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="SD 1.5 architecture on CUDA")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3, help="timed rounds each way")
    return parser.parse_args()


async def measure(args: argparse.Namespace, folder: Path) -> None:
    model = build_model(folder, gpu=args.gpu)
    client = EngineClient(engine_settings(model), max_batch=JOBS)
    await client.start()
    specs = [job_spec(model, seed, args.steps) for seed in range(JOBS)]
    try:
        # Warm-up: model load and first-call allocations, for both batch sizes.
        await client.generate("warm-1", model.name, specs[:1])
        await client.generate("warm-8", model.name, specs)
        batched: list[float] = []
        one_by_one: list[float] = []
        for rep in range(args.reps):
            started = time.perf_counter()
            images = await client.generate(f"batch-{rep}", model.name, specs)
            batched.append(time.perf_counter() - started)
            assert len(images) == JOBS

            started = time.perf_counter()
            for index, spec in enumerate(specs):
                await client.generate(f"single-{rep}-{index}", model.name, [spec])
            one_by_one.append(time.perf_counter() - started)
    finally:
        await client.close()

    batch_rate = JOBS / statistics.median(batched)
    single_rate = JOBS / statistics.median(one_by_one)
    print(describe(model, args.steps, args.reps) + f", {JOBS} jobs per round")
    print(summary("one batch of 8", batched))
    print(summary("8 one by one", one_by_one))
    print(
        f"throughput         {batch_rate:.2f} vs {single_rate:.2f} pictures/s: "
        f"batching is {batch_rate / single_rate:.2f}x"
    )


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="atelier-bench-") as folder:
        asyncio.run(measure(args, Path(folder)))


# The engine process is spawned and runs this file again: act only when executed.
if __name__ == "__main__":
    main()
