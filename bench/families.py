"""Per-family load and one-job times through `Engine`, against a bare diffusers call.

    python bench/families.py                 # the tests' tiny SDXL, SD 3 and Flux, CPU
    python bench/families.py --gpu           # SDXL and Flux.1-dev architectures from
                                             # their published configs (bench/sdxl,
                                             # bench/flux), random weights, CUDA

Random weights cost the same compute as trained ones. Each job is one picture at the
model's native size; the figures are medians over `--reps` runs (spread shown), with
the bare pipeline's time in the same run as the yardstick.
"""

from __future__ import annotations

import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) in sys.path:
    sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Last: tests/ holds an `engine` package of its own (the engine tests).
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))

import argparse
import json
import statistics
import tempfile
import time
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="full SDXL and Flux on CUDA")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    return parser.parse_args()


def _config(family: str, component: str) -> dict[str, Any]:
    data = json.loads((BENCH_DIR / family / component / "config.json").read_text())
    return {k: v for k, v in data.items() if not k.startswith("_") and k != "architectures"}


def build_full(family: str, folder: Path) -> Path:
    """The published architecture with random weights, saved as bf16 (CUDA only)."""
    import diffusers
    import torch
    import transformers
    from tiny_families.text import clip_tokenizer, t5_tokenizer

    torch.manual_seed(0)
    with torch.device("cuda"):
        parts: dict[str, Any] = {"vae": diffusers.AutoencoderKL.from_config(_config(family, "vae"))}
        parts["tokenizer"] = tokenizer = clip_tokenizer(folder / "tokenizer")
        # The tiny vocabulary's special tokens, so CLIP pools at the end-of-text token.
        ids = {
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        }
        clip = transformers.CLIPTextConfig(**_config(family, "text_encoder"), **ids)
        parts["text_encoder"] = transformers.CLIPTextModel(clip)
        if family == "sdxl":
            parts["unet"] = diffusers.UNet2DConditionModel.from_config(_config(family, "unet"))
            parts["tokenizer_2"] = clip_tokenizer(folder / "tokenizer_2")
            clip_g = transformers.CLIPTextConfig(**_config(family, "text_encoder_2"), **ids)
            parts["text_encoder_2"] = transformers.CLIPTextModelWithProjection(clip_g)
            parts["scheduler"] = diffusers.EulerDiscreteScheduler(
                beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
            )
            pipe = diffusers.StableDiffusionXLPipeline(**parts)
        else:
            parts["transformer"] = diffusers.FluxTransformer2DModel.from_config(
                _config(family, "transformer")
            )
            parts["tokenizer_2"] = t5_tokenizer(folder / "tokenizer_2")
            t5 = transformers.T5Config(**_config(family, "text_encoder_2"))
            parts["text_encoder_2"] = transformers.T5EncoderModel(t5)
            parts["scheduler"] = diffusers.FlowMatchEulerDiscreteScheduler(
                shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15
            )
            pipe = diffusers.FluxPipeline(**parts)
    pipe.to(torch.bfloat16).save_pretrained(folder)
    return folder


def build_tiny(family: str, folder: Path) -> Path:
    import tiny_families
    from tiny_model import build_tiny_pipeline

    builders = {
        "sd": build_tiny_pipeline,
        "sdxl": tiny_families.build_tiny_sdxl,
        "sd3": tiny_families.build_tiny_sd3,
        "flux": tiny_families.build_tiny_flux,
    }
    return builders[family](folder)


def measure(family: str, folder: Path, device: str, dtype: str, args: argparse.Namespace) -> str:
    import torch

    from engine.pipelines import Engine
    from engine.samplers import build_scheduler
    from engine.types import EngineSettings, ImageSpec

    engine = Engine(EngineSettings(device=device, dtype=dtype))
    started = time.perf_counter()
    engine.load(str(folder))
    load_time = time.perf_counter() - started  # includes the one-step check
    info = engine.model_info
    assert info is not None
    spec = ImageSpec(
        prompt="a red fox in a blue hat", seed=1, steps=args.steps, cfg=info.default_cfg,
        width=info.width, height=info.height, sampler=info.default_sampler,
    )  # fmt: skip
    pipe = engine.pipeline
    traits = info.traits

    def bare() -> None:
        # The same sampler as the engine's job, so both do the same work.
        pipe.scheduler = build_scheduler(
            info.default_sampler, pipe.scheduler.config, traits.schedule
        )
        pipe(
            "a red fox in a blue hat", num_inference_steps=args.steps,
            guidance_scale=info.default_cfg, width=info.width, height=info.height,
            generator=torch.Generator("cpu").manual_seed(1),
        )  # fmt: skip

    def ours() -> None:
        engine.generate([spec])

    times: dict[str, list[float]] = {"bare": [], "engine": []}
    for run in (bare, ours):
        run()  # warm-up
    for _ in range(args.reps):
        for name, run in (("bare", bare), ("engine", ours)):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            started = time.perf_counter()
            run()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - started)
    bare_median = statistics.median(times["bare"])
    engine_median = statistics.median(times["engine"])
    spread = max(times["engine"]) - min(times["engine"])
    return (
        f"{family:5} {info.width}x{info.height} load {load_time:6.2f} s  "
        f"job {engine_median:6.3f} s (spread {spread:.3f})  bare {bare_median:6.3f} s  "
        f"ratio {engine_median / bare_median:.2f}"
    )


def main() -> None:
    import os

    import torch

    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1 if not args.gpu else torch.get_num_threads())
    families = ("sdxl", "flux") if args.gpu else ("sd", "sdxl", "sd3", "flux")
    with tempfile.TemporaryDirectory() as scratch:
        for family in families:
            folder = Path(scratch) / family
            if args.gpu:
                print(measure(family, build_full(family, folder), "cuda", "bfloat16", args))
            else:
                print(measure(family, build_tiny(family, folder), "cpu", "float32", args))


if __name__ == "__main__":
    main()
