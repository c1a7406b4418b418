"""What the benchmarks share: the model they run, a bare diffusers pipeline, timing.

Two models, both with random weights and built here (no hub access is needed, on
this machine or on a GPU box):
- CPU: the tests' tiny SD-shaped model (`tests/tiny_model.py`), 64x64, float32;
- GPU (`--gpu`): the full Stable Diffusion 1.5 architecture from its published
  configs (`bench/sd15/`), 512x512, float16. Random weights cost the same compute
  as trained ones, so the timings stand for a real SD 1.5 checkpoint.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.types import EngineSettings, ImageSpec
from tests.tiny_model import build_tiny_pipeline

# Keep the figures readable: library warnings about random weights are expected here.
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

BENCH_DIR = Path(__file__).resolve().parent

PROMPT = "a red fox in a blue hat, portrait"
SAMPLER = "Euler a"
CFG = 7.0


@dataclass(frozen=True)
class BenchModel:
    name: str
    path: Path
    width: int
    height: int
    device: str
    dtype: str  # as EngineSettings spells it


def build_model(folder: Path, *, gpu: bool) -> BenchModel:
    if gpu:
        return BenchModel("sd15-random", build_sd15(folder / "sd15"), 512, 512, "cuda", "float16")
    return BenchModel("tiny", build_tiny_pipeline(folder / "tiny"), 64, 64, "cpu", "float32")


def build_sd15(folder: Path, device: str = "cuda") -> Path:
    """SD 1.5's UNet, VAE and CLIP text encoder with random weights, saved as fp16."""
    import torch
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    # The hub is out of reach: take the tokenizer the tiny model writes locally. Its
    # vocabulary is small, but prompts still become 77 tokens for a full-size encoder.
    tiny = build_tiny_pipeline(folder.parent / "tokenizer-source")
    tokenizer = CLIPTokenizer.from_pretrained(tiny / "tokenizer")
    text_config = _read_config("text_encoder/config.json")
    text_config.update(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    # Random initialisation of ~1 B parameters is far quicker on the GPU.
    with torch.device(device):
        unet = UNet2DConditionModel.from_config(_read_config("unet/config.json"))
        vae = AutoencoderKL.from_config(_read_config("vae/config.json"))
        text_encoder = CLIPTextModel(CLIPTextConfig(**text_config))
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=PNDMScheduler.from_config(_read_config("scheduler/scheduler_config.json")),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.to(torch.float16)
    pipe.save_pretrained(folder)
    return folder


def _read_config(relative: str) -> dict[str, Any]:
    return json.loads((BENCH_DIR / "sd15" / relative).read_text())


class BarePipeline:
    """The baseline: one plain diffusers call in this process, nothing around it."""

    def __init__(self, model: BenchModel) -> None:
        import torch
        from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.disable_progress_bar()
        self._torch = torch
        dtype = getattr(torch, model.dtype)
        pipe = StableDiffusionPipeline.from_pretrained(
            model.path, dtype=dtype, safety_checker=None, requires_safety_checker=False
        )
        # "Euler a", as the engine runs SAMPLER.
        pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        self._pipe = pipe.to(model.device)
        self._model = model

    def __call__(self, seeds: list[int], steps: int) -> list[Any]:
        generators = [self._torch.Generator("cpu").manual_seed(seed) for seed in seeds]
        return self._pipe(
            [PROMPT] * len(seeds),
            num_inference_steps=steps,
            guidance_scale=CFG,
            width=self._model.width,
            height=self._model.height,
            generator=generators,
        ).images


def engine_settings(model: BenchModel) -> EngineSettings:
    return EngineSettings(
        device=model.device, dtype=model.dtype, models={model.name: str(model.path)}
    )


def job_spec(model: BenchModel, seed: int, steps: int) -> ImageSpec:
    """The engine's version of one `BarePipeline` picture."""
    return ImageSpec(
        prompt=PROMPT,
        seed=seed,
        steps=steps,
        cfg=CFG,
        width=model.width,
        height=model.height,
        sampler=SAMPLER,
    )


def describe(model: BenchModel, steps: int, repetitions: int) -> str:
    return (
        f"model {model.name} ({model.device}, {model.dtype}), {model.width}x{model.height}, "
        f"{steps} steps, {SAMPLER}, {repetitions} repetitions"
    )


def summary(label: str, seconds: list[float]) -> str:
    values = sorted(seconds)
    return (
        f"{label:<18} median {statistics.median(values) * 1000:9.1f} ms"
        f"   min {values[0] * 1000:9.1f} ms   max {values[-1] * 1000:9.1f} ms"
    )
