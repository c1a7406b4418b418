"""What the engine process adds to one job, against a bare diffusers call.

The same job (one picture, 20 steps, Euler a, CFG 7) runs in turn three ways:
- a plain `pipe()` call in this process (the baseline);
- `Engine.generate` in this process: adds the engine's own work (prompt encoding with
  weights, sampler setup, PNG encoding with metadata);
- `EngineClient.generate`, through the engine process, exactly as the bot and
  `python -m bot imagine` run it: adds the pipe both ways and progress messages.
The median differences within a round are the overheads per job. Goal: the total under 5 %
of the job at 20 steps.

    python bench/engine_overhead.py              # tiny model on the CPU
    python bench/engine_overhead.py --gpu        # SD 1.5 architecture, 512x512, fp16

On a shared CPU, `OMP_NUM_THREADS=1` keeps threads from fighting and the figures stable.
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
from collections.abc import Awaitable, Callable

from bench.common import (
    BarePipeline,
    BenchModel,
    build_model,
    describe,
    engine_settings,
    job_spec,
    summary,
)
from engine.client import EngineClient


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="SD 1.5 architecture on CUDA")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--reps", type=int, default=15, help="timed jobs each way")
    parser.add_argument("--warmup", type=int, default=2, help="untimed jobs each way first")
    return parser.parse_args()


async def measure(args: argparse.Namespace, model: BenchModel) -> dict[str, list[float]]:
    from engine.pipelines import Engine  # torch: only once the model is built

    bare = BarePipeline(model)
    in_process = Engine(engine_settings(model))
    in_process.load(model.name)
    client = EngineClient(engine_settings(model), max_batch=1)
    await client.start()

    async def run_bare(seed: int) -> None:
        bare([seed], args.steps)

    async def run_in_process(seed: int) -> None:
        in_process.generate([job_spec(model, seed, args.steps)])

    async def run_engine_process(seed: int) -> None:
        await client.generate(f"bench-{seed}", model.name, [job_spec(model, seed, args.steps)])

    ways: dict[str, Callable[[int], Awaitable[None]]] = {
        "bare pipe()": run_bare,
        "Engine in-process": run_in_process,
        "engine process": run_engine_process,
    }
    times: dict[str, list[float]] = {label: [] for label in ways}
    try:
        for rep in range(-args.warmup, args.reps):
            # Taking turns evens out drift (other load, clocks, caches). The in-process
            # calls block this event loop; nothing else runs on it meanwhile.
            for label, run in ways.items():
                started = time.perf_counter()
                await run(rep)
                if rep >= 0:
                    times[label].append(time.perf_counter() - started)
    finally:
        await client.close()
    return times


def report(args: argparse.Namespace, model: BenchModel, times: dict[str, list[float]]) -> None:
    print(describe(model, args.steps, args.reps))
    for label, seconds in times.items():
        print(summary(label, seconds))
    bare, in_process, process = times.values()
    bare_median = statistics.median(bare)

    def overhead(label: str, slower: list[float], faster: list[float]) -> None:
        # Jobs of one round ran back to back: their differences cancel slow drift.
        extra = statistics.median(a - b for a, b in zip(slower, faster, strict=True))
        print(f"{label:<22} {extra * 1000:+9.1f} ms = {extra / bare_median:+6.1%} of the bare job")

    print("overheads, as the median of each round's difference:")
    overhead("engine's own work", in_process, bare)
    overhead("engine process", process, in_process)
    overhead("total (goal < 5 %)", process, bare)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="atelier-bench-") as folder:
        model = build_model(Path(folder), gpu=args.gpu)
        report(args, model, asyncio.run(measure(args, model)))


# The engine process is spawned and runs this file again: act only when executed.
if __name__ == "__main__":
    main()
