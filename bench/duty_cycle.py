"""The engine's duty cycle and images/s through the whole bot, against bare diffusers.

20 jobs (one picture, 20 steps, Euler a, CFG 7) are queued at once, then served two ways:
- through the bot: the real Scheduler (SQLite, events, pictures saved to disk) feeding
  the engine process, as `python -m bot run` does;
- bare: a plain diffusers `pipe()` per job in this process, one by one, each picture
  encoded to a PNG carrying the same `parameters` text (Pillow's default level).
Both with the same fixed torch thread count. Printed per way: wall time, images/s,
time to the first picture, CPU time (bot and engine processes together) and the
duty cycle — seconds inside pipeline calls (the engine's own counter, `health()`) over
the wall time while the 20 jobs wait. Rounds take turns in order; medians and the
spread (min-max) over rounds. Goals (issue 10): duty >= 97 % on the tiny model on a
CPU (>= 95 % on a GPU), bot images/s >= 0.98x bare.

    python bench/duty_cycle.py                   # tiny model, CPU, 1 thread
    python bench/duty_cycle.py --gpu             # SD 1.5 architecture, 512x512, fp16, CUDA
    python bench/duty_cycle.py --gpu --speed     # the engine with channels_last + compile
    python bench/duty_cycle.py --rounds 5 --jobs 20 --steps 20 --threads 1
"""

from __future__ import annotations

import sys
from pathlib import Path

# As in bench/engine_overhead.py: import from the repository root, not this folder.
if str(Path(__file__).resolve().parent) in sys.path:
    sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import time
from dataclasses import dataclass

from bench.common import CFG, PROMPT, SAMPLER, BarePipeline, BenchModel, build_model
from bot.config import Config, EngineConfig, LimitsConfig, ModelConfig, StorageConfig
from bot.jobs.events import Finished, JobEvent
from bot.jobs.scheduler import Scheduler
from bot.records import Caller, GenerationRequest, Job
from bot.store import DB_FILENAME, Store
from engine.backend import EngineBackend, create_backend
from engine.png import ImageParameters, encode_png, format_parameters
from engine.types import ImageSpec

PILLOW_DEFAULT_LEVEL = 6


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="SD 1.5 architecture on CUDA")
    parser.add_argument(
        "--speed", action="store_true", help="the engine with channels_last + torch.compile (CUDA)"
    )
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: 1 on CPU, 4 on GPU)"
    )
    args = parser.parse_args()
    if args.threads is None:
        args.threads = 4 if args.gpu else 1
    return args


@dataclass
class Run:
    wall: float
    first: float  # seconds to the first finished picture
    cpu: float  # CPU seconds of this process (+ the engine process's, through the bot)
    denoising: float  # seconds inside pipeline calls

    def images_per_s(self, jobs: int) -> float:
        return jobs / self.wall

    @property
    def duty(self) -> float:
        return self.denoising / self.wall


def make_config(folder: Path, model: BenchModel, args: argparse.Namespace) -> Config:
    return Config(
        engine=EngineConfig(
            default_model=model.name,
            device=model.device,
            dtype=model.dtype,  # type: ignore[arg-type]
            max_batch=1,  # one by one, as the bare runs
            threads=args.threads,
            channels_last=args.speed,
            compile=args.speed,
        ),
        models={
            model.name: ModelConfig(source=str(model.path), width=model.width, height=model.height)
        },
        limits=LimitsConfig(jobs_per_minute=10**6, max_queued_per_user=10**6, max_queue=10**6),
        storage=StorageConfig(path=str(folder / "data")),
        base_dir=folder,
    )


def request(model: BenchModel, seed: int, steps: int) -> GenerationRequest:
    return GenerationRequest(
        kind="imagine",
        prompt=PROMPT,
        negative="",
        model=model.name,
        seed=seed,
        steps=steps,
        cfg=CFG,
        width=model.width,
        height=model.height,
        sampler=SAMPLER,
    )


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def through_bot(
    folder: Path, config: Config, engine: EngineBackend, model: BenchModel, args: argparse.Namespace
) -> Run:
    store = await Store.open(config.data_dir / DB_FILENAME)
    scheduler = Scheduler(config, store, engine)
    finished: list[float] = []
    done = asyncio.Event()
    begin = 0.0

    async def listen(_job: Job, event: JobEvent) -> None:
        if isinstance(event, Finished):
            finished.append(time.perf_counter() - begin)
            if len(finished) == args.jobs:
                done.set()

    scheduler.add_listener("telegram", listen)
    caller = Caller("telegram", "1", "bench")
    for seed in range(args.jobs):
        await scheduler.submit(caller, request(model, seed, args.steps), {})
    before = await engine.health()
    engine_pid = int(before["pid"])  # type: ignore[arg-type]
    cpu_before = time.process_time() + process_cpu(engine_pid)
    begin = time.perf_counter()
    await scheduler.start()
    await done.wait()
    wall = time.perf_counter() - begin
    after = await engine.health()
    cpu = time.process_time() + process_cpu(engine_pid) - cpu_before
    await scheduler.stop()
    await store.close()
    denoising = after["duty"]["denoising_s"] - before["duty"]["denoising_s"]  # type: ignore[index]
    return Run(wall, min(finished), cpu, denoising)


def bare(pipe: BarePipeline, model: BenchModel, args: argparse.Namespace) -> Run:
    denoising = 0.0
    first = 0.0
    cpu_before = time.process_time()
    begin = time.perf_counter()
    for seed in range(args.jobs):
        started = time.perf_counter()
        (picture,) = pipe([seed], args.steps)
        denoising += time.perf_counter() - started
        parameters = format_parameters(
            ImageParameters(
                prompt=PROMPT,
                negative_prompt="",
                steps=args.steps,
                sampler=SAMPLER,
                cfg=CFG,
                seed=seed,
                width=picture.width,
                height=picture.height,
                model=model.name,
            )
        )
        encode_png(picture, parameters, compress_level=PILLOW_DEFAULT_LEVEL)
        if seed == 0:
            first = time.perf_counter() - begin
    return Run(time.perf_counter() - begin, first, time.process_time() - cpu_before, denoising)


def spread(values: list[float], unit: str = "", scale: float = 1.0, digits: int = 2) -> str:
    ordered = sorted(v * scale for v in values)
    return (
        f"median {statistics.median(ordered):.{digits}f}{unit} "
        f"(min {ordered[0]:.{digits}f}, max {ordered[-1]:.{digits}f})"
    )


def report(args: argparse.Namespace, model: BenchModel, runs: dict[str, list[Run]]) -> None:
    print(
        f"{args.jobs} queued jobs, {model.name} ({model.device}, {model.dtype}) "
        f"{model.width}x{model.height}, {args.steps} steps, {SAMPLER}, {args.threads} torch "
        f"thread(s), {args.rounds} rounds taking turns"
    )
    for label, ways in runs.items():
        print(f"{label}:")
        print(f"  wall          {spread([r.wall for r in ways], ' s')}")
        print(f"  images/s      {spread([r.images_per_s(args.jobs) for r in ways], '', 1, 3)}")
        print(f"  first picture {spread([r.first for r in ways], ' s')}")
        print(f"  CPU time      {spread([r.cpu for r in ways], ' s')}")
        print(f"  duty cycle    {spread([r.duty for r in ways], ' %', 100, 1)}")
    ratios = [
        b.images_per_s(args.jobs) / a.images_per_s(args.jobs)
        for b, a in zip(runs["through the bot"], runs["bare diffusers"], strict=True)
    ]
    print(f"bot / bare images/s, per round: {spread(ratios, 'x', 1, 3)}  (goal >= 0.98x)")
    # CPU seconds do not depend on what else the machine runs meanwhile, as wall time does.
    cpu_ratios = [
        b.cpu / a.cpu for b, a in zip(runs["through the bot"], runs["bare diffusers"], strict=True)
    ]
    print(f"bot / bare CPU time, per round: {spread(cpu_ratios, 'x', 1, 3)}")


async def measure(args: argparse.Namespace, folder: Path) -> None:
    import torch

    torch.set_num_threads(args.threads)  # this process's bare pipeline
    model = build_model(folder, gpu=args.gpu)
    config = make_config(folder, model, args)
    engine = create_backend(config.engine_settings(), max_batch=config.engine.engine_max_batch)
    await engine.start()
    pipe = BarePipeline(model)
    runs: dict[str, list[Run]] = {"through the bot": [], "bare diffusers": []}
    try:
        await engine.load_model(model.name)
        # Warm-up, both ways (a compiled denoiser compiles on its first picture).
        bare(pipe, model, argparse.Namespace(jobs=2, steps=args.steps))
        warm = request(model, 0, args.steps)
        specs = [
            ImageSpec(
                prompt=warm.prompt,
                seed=0,
                steps=warm.steps,
                cfg=warm.cfg,
                width=warm.width,
                height=warm.height,
                sampler=warm.sampler,
            )
        ]
        await engine.generate("warm-up", model.name, specs * 2)
        for number in range(args.rounds):
            order = ["through the bot", "bare diffusers"]
            if number % 2:
                order.reverse()
            for label in order:
                if label == "bare diffusers":
                    run = bare(pipe, model, args)
                else:
                    round_folder = folder / f"round-{number}"
                    round_folder.mkdir()
                    run = await through_bot(
                        round_folder,
                        make_config(round_folder, model, args),
                        engine,
                        model,
                        args,
                    )
                runs[label].append(run)
                print(
                    f"round {number + 1}, {label}: {run.wall:.2f} s, "
                    f"{run.images_per_s(args.jobs):.3f} images/s, duty {run.duty:.1%}",
                    flush=True,
                )
    finally:
        await engine.close()
    report(args, model, runs)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="atelier-bench-") as folder:
        asyncio.run(measure(args, Path(folder)))


if __name__ == "__main__":
    main()
