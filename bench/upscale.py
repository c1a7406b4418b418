"""What an upscale job costs: 512 px in, 1024 px out, on the tiny models.

The upscaler is the tests' tiny random-weight ESRGAN (`tests/tiny_upscaler.py`, 8
features, one block: a 4x model whose output is resized to 2x); the detail pass is
the tiny SD model's img2img at strength 0.3 with VAE tiling. Rows, each through
`Engine.generate` as the engine process runs it (decode, upscale, PNG with metadata):
- lanczos: no [upscale] model, no detail pass (resize only);
- model: the tiny ESRGAN on one tile (512 px fits the default tile);
- model, 256 tiles: the same in four-plus tiles with a 32 px blended overlap;
- model + detail: the tiny ESRGAN, then the detail pass;
and the baseline, a bare spandrel call on the whole picture plus a Lanczos resize,
which the model rows are divided by (the engine's own cost: decode, tiling, PNG).
The rows take turns within each round, so load from other processes falls on all alike.

    python bench/upscale.py [--rounds 3] [--threads 1] [--side 512]

Random weights cost the same compute as trained ones; a real 4x-UltraSharp has 64
features and 23 blocks (about 60 times the work per pixel).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts this folder first on the import path; import from the
# repository root instead.
if str(Path(__file__).resolve().parent) in sys.path:
    sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

import bench.common  # noqa: F401  (quiet library logging, offline hub)
from engine.pipelines import Engine
from engine.types import EngineSettings, ImageSpec, UpscaleSettings
from engine.upscaler import load_upscaler
from tests.tiny_model import build_tiny_pipeline
from tests.tiny_upscaler import save_tiny_upscaler


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (fixed)")
    parser.add_argument("--side", type=int, default=512, help="input side (output: twice)")
    return parser.parse_args()


def source_png(side: int) -> bytes:
    """A picture with detail at every scale: smooth gradients plus fixed noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side]
    array = np.stack([x / side * 255, y / side * 255, (x + y) / (2 * side) * 255], axis=-1)
    array = np.clip(array + rng.normal(0, 20, array.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def timed(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds per call, the calls taking turns within each round: load from others on
    a shared machine falls on all of them alike, so their ratios hold."""
    for call in calls.values():
        call()  # warm-up: first-call allocations and lazy imports are not the job's cost
    times: dict[str, list[float]] = {label: [] for label in calls}
    for _ in range(rounds):
        for label, call in calls.items():
            start = time.perf_counter()
            call()
            times[label].append(time.perf_counter() - start)
    return times


def line(label: str, seconds: list[float], baseline: float | None = None) -> str:
    values = sorted(seconds)
    median = statistics.median(values)
    ratio = f"   x{median / baseline:.2f} of bare" if baseline else ""
    return (
        f"{label:<20} median {median:7.3f} s   min {values[0]:7.3f} s   "
        f"max {values[-1]:7.3f} s{ratio}"
    )


def main() -> None:
    from diffusers.utils import logging as diffusers_logging

    args = parse_args()
    torch.set_num_threads(args.threads)
    diffusers_logging.disable_progress_bar()
    side = args.side
    data = source_png(side)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        model_dir = build_tiny_pipeline(folder / "tiny")
        upscaler_file = save_tiny_upscaler(folder / "4x-Tiny.pth")

        def engine(upscale: UpscaleSettings) -> Engine:
            built = Engine(
                EngineSettings(device="cpu", models={"tiny": str(model_dir)}, upscale=upscale)
            )
            built.load("tiny")
            return built

        def job(built: Engine, strength: float) -> Callable[[], object]:
            spec = ImageSpec(
                prompt="a red fox",
                seed=1,
                steps=4,
                width=2 * side,
                height=2 * side,
                init_image=data,
                strength=strength,
                upscale=2,
            )
            return lambda: built.generate([spec])

        descriptor = load_upscaler(
            UpscaleSettings(model=str(upscaler_file)), "cpu", torch.float32
        )._model

        def bare() -> Image.Image:
            with Image.open(io.BytesIO(data)) as picture:
                array = np.array(picture.convert("RGB"))
            pixels = torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255
            with torch.inference_mode():
                output = descriptor(pixels)[0].permute(1, 2, 0).mul(255).round().byte()
            return Image.fromarray(output.numpy()).resize((2 * side,) * 2, Image.Resampling.LANCZOS)

        print(
            f"upscale {side}x{side} -> {2 * side}x{2 * side}, cpu float32, "
            f"{args.threads} thread(s), {args.rounds} rounds (after one warm-up)"
        )
        with_model = engine(UpscaleSettings(model=str(upscaler_file)))
        tiled = engine(UpscaleSettings(model=str(upscaler_file), tile=256, overlap=32))
        times = timed(
            {
                "bare spandrel": bare,
                "lanczos": job(engine(UpscaleSettings()), 0),
                "model": job(with_model, 0),
                "model, 256 tiles": job(tiled, 0),
                "model + detail 0.3": job(with_model, 0.3),
            },
            args.rounds,
        )
        base = statistics.median(times["bare spandrel"])
        for label, seconds in times.items():
            print(line(label, seconds, base if label.startswith("model") else None))


if __name__ == "__main__":
    main()
