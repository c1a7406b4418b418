"""What live previews cost a job: the same 20-step job with and without them.

Two ways, each in alternating rounds (on, off, on, off…) so drift cancels:
- in this process, `Engine.generate` with a `Previewer` against without one: the
  step callback's clock check, the latent projection and the JPEG encoding;
- through the engine process (`EngineClient`, as the bot runs it), one process with
  `preview_every` set and one without: adds sending the JPEGs over the pipe.
The preview interval here (`--every`, default 0.1 s) is far shorter than the default
3 s, so a job of a second makes several previews and their cost shows; the per-preview
cost, and what it comes to at the default interval, are printed too.

    OMP_NUM_THREADS=1 python bench/previews.py            # tiny model on the CPU, 1 thread
    python bench/previews.py --gpu                        # SD 1.5 architecture, 512x512, fp16
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Run as a script, Python puts this folder first on the import path; import from the
# repository root instead. (The spawned engine process runs this file again.)
if str(Path(__file__).resolve().parent) in sys.path:
    sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # fixed threads: stable figures

import argparse
import asyncio
import dataclasses
import logging
import statistics
import tempfile
import time

from bench.common import BenchModel, build_model, describe, engine_settings, job_spec, summary
from engine.client import EngineClient

DEFAULT_INTERVAL = 3.0  # [engine] preview_every's default


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="SD 1.5 architecture on CUDA")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--reps", type=int, default=10, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--every", type=float, default=0.1, help="seconds between previews")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in this process")
    return parser.parse_args()


def ratio_line(label: str, on: list[float], off: list[float], previews: list[int]) -> None:
    ratios = sorted(a / b for a, b in zip(on, off, strict=True))
    extra = statistics.median(a - b for a, b in zip(on, off, strict=True))
    per_job = statistics.median(previews) if previews else 0
    print(
        f"{label:<16} on/off ratio median {statistics.median(ratios):.3f}"
        f" (min {ratios[0]:.3f}, max {ratios[-1]:.3f}); {extra * 1000:+.1f} ms per job,"
        f" {per_job:g} previews per job"
    )
    if per_job:
        each = extra / per_job
        print(
            f"{'':<16} {each * 1000:+.2f} ms per preview: at the default one per"
            f" {DEFAULT_INTERVAL:g} s, {each / DEFAULT_INTERVAL:+.3%} of painting time"
        )


def in_process(args: argparse.Namespace, model: BenchModel) -> None:
    import torch

    from engine.pipelines import Engine
    from engine.previews import Previewer

    torch.set_num_threads(args.threads)
    engine = Engine(engine_settings(model))
    engine.load(model.name)
    times: dict[str, list[float]] = {"previews on": [], "previews off": []}
    counts: list[int] = []
    for rep in range(-args.warmup, args.reps):
        for label in times:
            sent: list[dict[int, bytes]] = []
            previews = Previewer(args.every, sent.append) if label == "previews on" else None
            started = time.perf_counter()
            engine.generate([job_spec(model, rep, args.steps)], previews=previews)
            if rep >= 0:
                times[label].append(time.perf_counter() - started)
                if previews is not None:
                    counts.append(len(sent))
    print(f"in this process ({args.threads} torch thread(s)):")
    for label, seconds in times.items():
        print(summary(label, seconds))
    ratio_line("in-process", times["previews on"], times["previews off"], counts)
    one_preview(engine, model, statistics.median(times["previews off"]))


def one_preview(engine: object, model: BenchModel, job_seconds: float, repeats: int = 200) -> None:
    """The cost of one preview alone (projection, resize, JPEG), free of the job's noise."""
    import torch

    from engine.previews import LatentPreview, encode_jpeg

    pipe = engine.pipeline  # type: ignore[attr-defined]
    factor = pipe.vae_scale_factor
    latents = torch.randn(1, 4, model.height // factor, model.width // factor, device=model.device)
    maker = LatentPreview("sd")
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        for image in maker.images(pipe, latents.to(pipe.unet.dtype), model.width, model.height):
            encode_jpeg(image)
        seconds.append(time.perf_counter() - started)
    each = statistics.median(seconds)
    print(
        f"one preview alone: median {each * 1000:.3f} ms (min {min(seconds) * 1000:.3f},"
        f" max {max(seconds) * 1000:.3f}, {repeats} repeats) = {each / DEFAULT_INTERVAL:.4%}"
        f" of painting time at one per {DEFAULT_INTERVAL:g} s; {each / job_seconds:.3%} of"
        f" this {job_seconds:.2f} s job per preview"
    )


async def engine_process(args: argparse.Namespace, model: BenchModel) -> None:
    settings = engine_settings(model)
    on = EngineClient(dataclasses.replace(settings, preview_every=args.every), max_batch=1)
    off = EngineClient(settings, max_batch=1)
    await on.start()
    await off.start()
    times: dict[str, list[float]] = {"previews on": [], "previews off": []}
    counts: list[int] = []
    try:
        for rep in range(-args.warmup, args.reps):
            for label, client in (("previews on", on), ("previews off", off)):
                sent: list[dict[int, bytes]] = []
                started = time.perf_counter()
                await client.generate(
                    f"bench-{rep}",
                    model.name,
                    [job_spec(model, rep, args.steps)],
                    on_preview=sent.append,
                )
                if rep >= 0:
                    times[label].append(time.perf_counter() - started)
                    if client is on:
                        counts.append(len(sent))
    finally:
        await on.close()
        await off.close()
    print(f"through the engine process (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}):")
    for label, seconds in times.items():
        print(summary(label, seconds))
    ratio_line("engine process", times["previews on"], times["previews off"], counts)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="atelier-bench-") as folder:
        model = build_model(Path(folder), gpu=args.gpu)
        print(describe(model, args.steps, args.reps) + f", a preview every {args.every:g} s")
        in_process(args, model)
        asyncio.run(engine_process(args, model))


# The engine process is spawned and runs this file again: act only when executed.
if __name__ == "__main__":
    main()
