"""The in-process engine: one loaded model, three pipelines sharing its weights.

`Engine` is used from one thread at a time (the engine process runs one job at a
time), so swapping `pipe.scheduler` per call is safe.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from engine.images import decode_image, decode_mask, paste_unmasked, round_size
from engine.loading import (
    ModelSource,
    free_memory,
    load_pipeline,
    resolve_device,
    resolve_dtype,
    resolve_source,
)
from engine.nsfw import NsfwChecker
from engine.png import ImageParameters, encode_png, format_parameters
from engine.prompts import PromptEncoder
from engine.samplers import build_scheduler, canonical_sampler
from engine.types import (
    EngineError,
    EngineSettings,
    GeneratedImage,
    GenerationCancelled,
    ImageSpec,
    Mode,
)

log = logging.getLogger(__name__)

OUT_OF_MEMORY_MESSAGE = (
    "out of GPU memory even with memory savers; try a smaller size or fewer images"
)

ProgressCallback = Callable[[int, int], None]
CancelCheck = Callable[[], bool]


@dataclass
class LoadedModel:
    source: ModelSource
    pipelines: dict[Mode, Any]  # text2img, img2img, inpaint over one set of weights
    # The model's own scheduler config: samplers replace `pipe.scheduler` per call.
    scheduler_config: Any
    encoder: PromptEncoder
    # Width and height must be multiples of this: the VAE's downscale times the UNet's
    # downsamplings, and of 8, which diffusers' pipelines check for.
    size_multiple: int


@dataclass
class Batch:
    """Specs that run in one pipeline call, with their decoded inputs."""

    indices: list[int]  # positions in the caller's list
    specs: list[ImageSpec]
    mode: Mode
    sampler: str
    width: int
    height: int
    steps: int  # inference steps asked of the pipeline
    total_steps: int  # denoising steps it will run (fewer for img2img)
    scheduler: Any  # built once per batch: some (DPM2) take most of a second to build
    init_images: list[Image.Image] = field(default_factory=list)
    masks: list[Image.Image] = field(default_factory=list)


class Engine:
    def __init__(self, settings: EngineSettings) -> None:
        self._settings = settings
        self._device = resolve_device(settings.device)
        self._dtype = resolve_dtype(settings.dtype, self._device)
        self._model: LoadedModel | None = None
        self._nsfw: NsfwChecker | None = None

    @property
    def model_name(self) -> str | None:
        return self._model.source.display_name if self._model else None

    @property
    def device(self) -> str:
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        return self._dtype

    @property
    def pipeline(self) -> Any | None:
        """The loaded text2img pipeline, for inspection; None before a model loads."""
        return self._model.pipelines["text2img"] if self._model else None

    def load(self, name_or_path: str) -> str:
        source = resolve_source(name_or_path, self._settings.models)
        if self._model is not None and self._model.source == source:
            return source.display_name
        if self._settings.nsfw_classifier and self._nsfw is None:
            # Loaded once, before the model: if it fails, the current model stays.
            self._nsfw = NsfwChecker(self._settings.nsfw_classifier, self._device, self._dtype)
        # Free the old weights first: two SD models at once may not fit on the GPU.
        self._model = None
        free_memory()
        self._model = self._build_model(source)
        log.info("loaded model %s on %s (%s)", source.display_name, self._device, self._dtype)
        return source.display_name

    def _build_model(self, source: ModelSource) -> LoadedModel:
        from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline

        text2img = load_pipeline(source, self._device, self._dtype)
        # from_pipe reuses the same modules: no second copy of the weights. It also casts
        # them to `dtype`, float32 unless told otherwise, which would undo fp16.
        img2img = StableDiffusionImg2ImgPipeline.from_pipe(text2img, dtype=self._dtype)
        inpaint = StableDiffusionInpaintPipeline.from_pipe(text2img, dtype=self._dtype)
        for pipe in (img2img, inpaint):
            pipe.set_progress_bar_config(disable=True)
        downsamplings = len(text2img.unet.config.block_out_channels) - 1
        return LoadedModel(
            source=source,
            pipelines={"text2img": text2img, "img2img": img2img, "inpaint": inpaint},
            scheduler_config=text2img.scheduler.config,
            encoder=PromptEncoder(text2img.tokenizer, text2img.text_encoder),
            size_multiple=math.lcm(8, text2img.vae_scale_factor * 2**downsamplings),
        )

    def generate(
        self,
        specs: list[ImageSpec],
        *,
        on_step: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> list[GeneratedImage]:
        """One picture per spec, in order; specs sharing a batch key run in one call."""
        if self._model is None:
            raise EngineError("no model is loaded")
        model = self._model
        batches = [self._plan(model, indices, specs) for indices in _group_by_batch_key(specs)]
        total = sum(batch.total_steps for batch in batches)
        results: dict[int, GeneratedImage] = {}
        done = 0
        for batch in batches:
            if should_cancel is not None and should_cancel():
                raise GenerationCancelled("cancelled")
            pictures = self._run(model, batch, done, total, on_step, should_cancel)
            flags = self._nsfw.flags(pictures) if self._nsfw else [False] * len(pictures)
            for position, picture in enumerate(pictures):
                index = batch.indices[position]
                results[index] = self._finish(model, batch, position, picture, flags[position])
            done += batch.total_steps
        return [results[index] for index in range(len(specs))]

    def _plan(self, model: LoadedModel, indices: list[int], specs: list[ImageSpec]) -> Batch:
        first = specs[indices[0]]
        try:
            sampler = canonical_sampler(first.sampler)
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        if first.steps < 1:
            raise EngineError("steps must be at least 1")
        if first.width < 1 or first.height < 1:
            raise EngineError("width and height must be positive")
        if first.mode != "text2img" and not 0.0 < first.strength <= 1.0:
            raise EngineError("strength must be above 0 and at most 1")
        width = round_size(first.width, model.size_multiple)
        height = round_size(first.height, model.size_multiple)
        batch = Batch(
            indices=indices,
            specs=[specs[index] for index in indices],
            mode=first.mode,
            sampler=sampler,
            width=width,
            height=height,
            steps=_steps_to_ask(first),
            total_steps=0,
            scheduler=build_scheduler(sampler, model.scheduler_config),
        )
        batch.total_steps = _count_denoising_steps(batch)
        for spec in batch.specs:
            if spec.init_image is not None:
                batch.init_images.append(decode_image(spec.init_image, (width, height)))
            if spec.mode == "inpaint" and spec.mask_image is not None:
                batch.masks.append(decode_mask(spec.mask_image, (width, height)))
        return batch

    def _run(
        self,
        model: LoadedModel,
        batch: Batch,
        done: int,
        total: int,
        on_step: ProgressCallback | None,
        should_cancel: CancelCheck | None,
    ) -> list[Image.Image]:
        pipe = model.pipelines[batch.mode]
        pipe.scheduler = batch.scheduler

        def step_end(_pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict:
            if on_step is not None:
                on_step(done + step + 1, total)
            if should_cancel is not None and should_cancel():
                raise GenerationCancelled("cancelled")
            return tensors

        def call() -> list[Image.Image]:
            # Positive and negative prompts padded to one length, stacked per picture.
            conditioning = model.encoder.encode(
                [spec.prompt for spec in batch.specs]
                + [spec.negative_prompt for spec in batch.specs]
            )
            count = len(batch.specs)
            # Seeded on the CPU: the same seed gives the same noise on any device.
            # Fresh generators per attempt: an OOM retry must give the same pictures.
            generators = [torch.Generator("cpu").manual_seed(spec.seed) for spec in batch.specs]
            arguments: dict[str, Any] = {
                "prompt_embeds": torch.cat(conditioning[:count]).to(self._device, pipe.unet.dtype),
                "negative_prompt_embeds": torch.cat(conditioning[count:]).to(
                    self._device, pipe.unet.dtype
                ),
                "num_inference_steps": batch.steps,
                "guidance_scale": batch.specs[0].cfg,
                "generator": generators,
                "callback_on_step_end": step_end,
                "output_type": "pil",
            }
            if batch.mode != "img2img":
                arguments.update(width=batch.width, height=batch.height)
            if batch.mode != "text2img":
                arguments.update(image=batch.init_images, strength=batch.specs[0].strength)
            if batch.mode == "inpaint":
                arguments.update(mask_image=batch.masks)
            return pipe(**arguments).images

        pictures = _call_with_memory_fallback(pipe, call)
        if batch.mode == "inpaint":
            pictures = [
                paste_unmasked(picture, original, mask)
                for picture, original, mask in zip(
                    pictures, batch.init_images, batch.masks, strict=True
                )
            ]
        return pictures

    def _finish(
        self, model: LoadedModel, batch: Batch, position: int, picture: Image.Image, nsfw: bool
    ) -> GeneratedImage:
        spec = batch.specs[position]
        parameters = format_parameters(
            ImageParameters(
                prompt=spec.prompt,
                negative_prompt=spec.negative_prompt,
                steps=spec.steps,
                sampler=batch.sampler,
                cfg=spec.cfg,
                seed=spec.seed,
                width=picture.width,
                height=picture.height,
                model=model.source.display_name,
                denoising_strength=spec.strength if batch.mode != "text2img" else None,
            )
        )
        return GeneratedImage(
            png=encode_png(picture, parameters),
            seed=spec.seed,
            width=picture.width,
            height=picture.height,
            parameters=parameters,
            nsfw=nsfw,
        )


def _group_by_batch_key(specs: list[ImageSpec]) -> list[list[int]]:
    groups: dict[tuple[object, ...], list[int]] = {}
    for index, spec in enumerate(specs):
        groups.setdefault(spec.batch_key(), []).append(index)
    return list(groups.values())


def _steps_to_ask(spec: ImageSpec) -> int:
    """img2img runs int(steps * strength) steps; ask for enough that at least one runs."""
    steps = spec.steps
    if spec.mode != "text2img":
        while int(steps * spec.strength) < 1:
            steps += 1
    return steps


def _count_denoising_steps(batch: Batch) -> int:
    """How many times the pipeline's step callback will fire, as diffusers computes it:
    second-order samplers (Heun, DPM2) step twice per inference step, and img2img
    skips the first (1 - strength) part of the schedule."""
    # The pipeline calls set_timesteps again itself, which resets the scheduler.
    scheduler = batch.scheduler
    scheduler.set_timesteps(batch.steps)
    if batch.mode == "text2img":
        return len(scheduler.timesteps)
    strength = batch.specs[0].strength
    kept = min(int(batch.steps * strength), batch.steps)
    start = max(batch.steps - kept, 0)
    return len(scheduler.timesteps[start * scheduler.order :])


def _call_with_memory_fallback(pipe: Any, call: Callable[[], list[Image.Image]]) -> Any:
    """Run `call`; on CUDA out-of-memory retry once with memory savers, then give up."""
    try:
        return _guarded(call)
    except torch.cuda.OutOfMemoryError:
        log.warning("out of GPU memory; retrying with attention slicing and VAE tiling")
    # Retrying outside the except block lets the failed attempt's traceback, and the
    # tensors its frames hold, be freed first.
    free_memory()
    try:
        with _memory_savers(pipe):
            return _guarded(call)
    except torch.cuda.OutOfMemoryError:
        pass
    free_memory()
    raise EngineError(OUT_OF_MEMORY_MESSAGE)


def _guarded(call: Callable[[], list[Image.Image]]) -> list[Image.Image]:
    try:
        return call()
    except (EngineError, torch.cuda.OutOfMemoryError):
        raise
    except Exception as exc:
        # A pipeline failure must not take the engine down: report it as a job error.
        log.exception("generation failed")
        raise EngineError(f"generation failed: {exc}") from None


@contextlib.contextmanager
def _memory_savers(pipe: Any) -> Iterator[None]:
    pipe.enable_attention_slicing()
    pipe.vae.enable_tiling()
    pipe.vae.enable_slicing()
    try:
        yield
    finally:
        # Back to full speed for the next job, which may be small.
        pipe.disable_attention_slicing()
        pipe.vae.disable_tiling()
        pipe.vae.disable_slicing()
