"""The in-process engine: one loaded model, three pipelines sharing its weights.

`Engine` is used from one thread at a time (the engine process runs one job at a
time), so swapping `pipe.scheduler` per call is safe. What differs between model
families (prompt encoding, samplers, which arguments a pipeline takes) comes from
`engine.families`; this module is the same for all of them.
"""

from __future__ import annotations

import importlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from engine.duty import DutyMeter
from engine.encoding import Finisher, PendingImages
from engine.families import FamilyTraits
from engine.images import decode_image, decode_mask, paste_unmasked, round_size
from engine.inspect import ModelInfo
from engine.loading import (
    ModelSource,
    free_memory,
    load_pipelines,
    resolve_device,
    resolve_dtype,
    resolve_source,
)
from engine.loras import LoraSet, lora_hash
from engine.memory import call_with_memory_fallback
from engine.nsfw import NsfwChecker
from engine.png import ImageParameters, encode_png, format_parameters
from engine.previews import LatentPreview, Previewer, load_taesd
from engine.prompts import EncodingCache, split_lora_tags
from engine.samplers import build_scheduler, canonical_sampler
from engine.speed import apply_speed_options, snap_to_bucket
from engine.steps import count_denoising_steps, steps_to_ask
from engine.types import (
    CancelCheck,
    EngineError,
    EngineSettings,
    GeneratedImage,
    GenerationCancelled,
    ImageSpec,
    Mode,
    ModelLoadError,
    ModelOptions,
    ProgressCallback,
)
from engine.upscaler import load_upscaler, vae_tiling

log = logging.getLogger(__name__)

# The load-time check: one step at the smallest size the model takes.
SMOKE_SIDE = 64


@dataclass
class LoadedModel:
    source: ModelSource
    traits: FamilyTraits
    info: ModelInfo
    pipelines: dict[Mode, Any]  # text2img, img2img, inpaint over one set of weights
    # The model's own scheduler config: samplers replace `pipe.scheduler` per call.
    scheduler_config: Any
    encoder: Any  # the family's prompt encoder
    # Width and height must be multiples of this: the VAE's downscale times the
    # denoiser's own (UNet downsamplings, transformer patches), and of 8.
    size_multiple: int
    loras: LoraSet
    prompts: EncodingCache = field(default_factory=EncodingCache)
    preview: LatentPreview | None = None  # live previews: latents -> small RGB


@dataclass
class Batch:
    """Specs that run in one pipeline call, with their inputs decoded and encoded."""

    indices: list[int]  # positions in the caller's list
    specs: list[ImageSpec]
    mode: Mode
    sampler: str
    width: int
    height: int
    steps: int  # inference steps asked of the pipeline
    total_steps: int  # denoising steps it will run (fewer for img2img)
    scheduler: Any  # built once per batch: some (DPM2) take most of a second to build
    loras: list[tuple[str, Path, float]] = field(default_factory=list)
    conditioning: dict[str, torch.Tensor] = field(default_factory=dict)
    init_images: list[Image.Image] = field(default_factory=list)
    masks: list[Image.Image] = field(default_factory=list)


class Engine:
    def __init__(self, settings: EngineSettings) -> None:
        self._settings = settings
        self._device = resolve_device(settings.device)
        self._dtype = resolve_dtype(settings.dtype, self._device)
        self._model: LoadedModel | None = None
        # Recently used models kept in CPU memory ([engine] keep_in_ram), newest last.
        self._parked: OrderedDict[ModelSource, LoadedModel] = OrderedDict()
        self._nsfw: NsfwChecker | None = None
        self._offloaded: Any = None  # the pipeline whose CPU-offload hooks are set
        self._finisher = Finisher()
        self.duty = DutyMeter()  # time in pipeline calls, for the duty cycle
        self._taesd: Any = None  # [engine] preview_vae, loaded with the first model
        # [upscale]: loaded with the engine, so a bad model file fails the start.
        self._upscaler = load_upscaler(settings.upscale, self._device, self._dtype)

    @property
    def model_name(self) -> str | None:
        return self._model.source.display_name if self._model else None

    @property
    def model_info(self) -> ModelInfo | None:
        """The loaded model's family, native size and defaults."""
        return self._model.info if self._model else None

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
        """Load and check a model; if it fails, the model loaded before stays loaded."""
        source = resolve_source(name_or_path, self._settings.models)
        if self._model is not None and self._model.source == source:
            return source.display_name
        started = time.monotonic()
        if self._settings.nsfw_classifier and self._nsfw is None:
            # Loaded once, before the model: if it fails, the current model stays.
            self._nsfw = NsfwChecker(self._settings.nsfw_classifier, self._device, self._dtype)
        previous = self._model.source if self._model is not None else None
        # Taken out before the current model is parked, which may evict the oldest.
        parked = self._parked.pop(source, None)
        if self._model is not None:
            self._put_away(self._model)
        # The old weights go first (unless parked): two models may not fit on the GPU.
        self._model = None
        free_memory()
        try:
            if parked is not None:
                self._model = _moved(parked, self._device)
            else:
                self._model = self._check(self._build_model(source))
        except Exception:
            free_memory()
            if previous is not None:
                self._restore(previous)
            raise
        # The one line an admin waits for after a start or a switch.
        log.info(
            "model %s ready: %s on %s, %s, loaded in %.1f s%s",
            source.display_name,
            self._model.traits.label,
            self._device,
            str(self._dtype).removeprefix("torch."),
            time.monotonic() - started,
            " (from RAM)" if parked is not None else "",
        )
        return source.display_name

    def _build_model(self, source: ModelSource) -> LoadedModel:
        options = self._settings.model_options.get(source.display_name, ModelOptions())
        traits, info, pipelines = load_pipelines(source, options, self._device, self._dtype)
        text2img = pipelines["text2img"]
        if options.clip_skip not in traits.clip_skip:
            raise ModelLoadError(
                f"{source.display_name}: clip_skip {options.clip_skip} does not apply to "
                f"{traits.label} (it takes {', '.join(map(str, traits.clip_skip))})"
            )
        if self._device.startswith("cuda"):
            apply_speed_options(pipelines, self._settings)
        family_module = importlib.import_module(f"engine.families.{traits.name}")
        folder = Path(self._settings.loras_path) if self._settings.loras_path else None
        return LoadedModel(
            source=source,
            traits=traits,
            info=info,
            pipelines=pipelines,
            scheduler_config=text2img.scheduler.config,
            encoder=family_module.Encoder(text2img, options.clip_skip),
            size_multiple=_size_multiple(text2img, traits),
            loras=LoraSet(folder, source.display_name, traits.label),
            preview=LatentPreview(traits.name, self._preview_decoder()),
        )

    def _preview_decoder(self) -> Any:
        if self._settings.preview_vae and self._taesd is None:
            self._taesd = load_taesd(self._settings.preview_vae, self._device, self._dtype)
        return self._taesd

    def _check(self, model: LoadedModel) -> LoadedModel:
        """One step at a tiny size: a model that loads but cannot paint fails here, at
        load time, and never after a switch to it has been announced."""
        side = round_size(SMOKE_SIDE, model.size_multiple)
        spec = ImageSpec(
            prompt="",
            steps=1,
            cfg=model.info.default_cfg,
            width=side,
            height=side,
            sampler=model.info.default_sampler,
        )
        try:
            self._start(model, [spec], None, None).result()
        except EngineError as exc:
            raise ModelLoadError(
                f"{model.source.display_name} loads but cannot paint: "
                f"{str(exc).removeprefix('generation failed: ')}"
            ) from None
        return model

    def _put_away(self, model: LoadedModel) -> None:
        """Park the model in CPU memory when keep_in_ram allows, else let it go."""
        if self._settings.keep_in_ram < 1:
            return
        self._parked[model.source] = _moved(model, "cpu")
        while len(self._parked) > self._settings.keep_in_ram:
            self._parked.popitem(last=False)

    def _restore(self, previous: ModelSource) -> None:
        """Back to the model loaded before a failed load: from RAM if parked, else
        loaded again (it loaded and painted before, so it needs no new check)."""
        try:
            parked = self._parked.pop(previous, None)
            self._model = (
                _moved(parked, self._device) if parked is not None else self._build_model(previous)
            )
        except Exception:
            log.exception("the model loaded before, %s, could not be restored", previous)
            self._model = None

    def generate(
        self,
        specs: list[ImageSpec],
        *,
        on_step: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
        previews: Previewer | None = None,
    ) -> list[GeneratedImage]:
        """One picture per spec, in order; specs sharing a batch key (and a prompt
        encoding of the same length) run in one call. `previews` gets live previews."""
        return self.start(
            specs, on_step=on_step, should_cancel=should_cancel, previews=previews
        ).result()

    def start(
        self,
        specs: list[ImageSpec],
        *,
        on_step: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
        previews: Previewer | None = None,
    ) -> PendingImages:
        """Denoise every spec now; their safety checks and PNGs are finished on the
        finisher thread (engine/encoding.py) while the caller goes on."""
        if self._model is None:
            raise EngineError("no model is loaded")
        return self._start(self._model, specs, on_step, should_cancel, previews)

    def _start(
        self,
        model: LoadedModel,
        specs: list[ImageSpec],
        on_step: ProgressCallback | None,
        should_cancel: CancelCheck | None,
        previews: Previewer | None = None,
    ) -> PendingImages:
        batches = [
            batch
            for indices in _group_by_batch_key(specs)
            for batch in self._plan(model, indices, specs)
        ]
        total = sum(batch.total_steps for batch in batches)
        pending = PendingImages(len(specs))
        done = 0
        for batch in batches:
            if should_cancel is not None and should_cancel():
                raise GenerationCancelled("cancelled")
            if batch.steps == 0:  # an upscale without a detail pass: its enlarged input
                pictures = batch.init_images
            else:
                with self.duty.denoising():
                    pictures = self._run(
                        model, batch, done, total, on_step, should_cancel, previews
                    )
            pending.parts.append(
                (batch.indices, self._finisher.submit(self._finisher_for(model, batch, pictures)))
            )
            done += batch.total_steps
        return pending

    def _finisher_for(
        self, model: LoadedModel, batch: Batch, pictures: list[Image.Image]
    ) -> Callable[[], list[GeneratedImage]]:
        nsfw = self._nsfw  # as it is now: a later load may replace it

        def finish() -> list[GeneratedImage]:
            flags = nsfw.flags(pictures) if nsfw else [False] * len(pictures)
            return [
                self._finish(model, batch, position, picture, flags[position])
                for position, picture in enumerate(pictures)
            ]

        return finish

    def _plan(self, model: LoadedModel, indices: list[int], specs: list[ImageSpec]) -> list[Batch]:
        """The batches for specs of one batch key: one per length of prompt encoding,
        so no picture's conditioning is padded for the sake of another."""
        first = specs[indices[0]]
        try:
            sampler = canonical_sampler(first.sampler, model.traits.samplers)
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        if first.steps < 1:
            raise EngineError("steps must be at least 1")
        if first.width < 1 or first.height < 1:
            raise EngineError("width and height must be positive")
        resize_only = first.upscale > 0 and first.strength == 0
        if first.mode != "text2img" and not (0.0 < first.strength <= 1.0 or resize_only):
            raise EngineError("strength must be above 0 and at most 1")
        width, height = first.width, first.height
        if self._settings.compile and self._device.startswith("cuda"):
            width, height = snap_to_bucket(width, height, model.info)
        width = round_size(width, model.size_multiple)
        height = round_size(height, model.size_multiple)
        if resize_only:
            return [self._resize_batch(indices, specs, sampler, (width, height))]
        _, tags = split_lora_tags(first.prompt)
        loras = model.loras.resolve(tags)
        own_inpainter = _denoiser(model.pipelines["inpaint"]) is not _denoiser(
            model.pipelines["text2img"]
        )
        if loras and first.mode == "inpaint" and own_inpainter:
            raise EngineError("LoRAs do not apply to this model's inpainting checkpoint")
        # The prompt is encoded with the batch's LoRAs on: they may change the encoders.
        model.loras.apply(model.pipelines["text2img"], loras)
        lora_key = tuple((name, lora_hash(path), weight) for name, path, weight in loras)
        by_length: dict[tuple[object, ...], list[tuple[int, dict[str, torch.Tensor]]]] = {}
        for index in indices:
            spec = specs[index]
            prompt, _ = split_lora_tags(spec.prompt)
            negative, _ = split_lora_tags(spec.negative_prompt)
            conditioning = model.prompts.encode(model.encoder, prompt, negative, lora_key)
            shape = tuple((key, tuple(value.shape)) for key, value in conditioning.items())
            by_length.setdefault(shape, []).append((index, conditioning))
        batches = []
        for group in by_length.values():
            batch = Batch(
                indices=[index for index, _ in group],
                specs=[specs[index] for index, _ in group],
                mode=first.mode,
                sampler=sampler,
                width=width,
                height=height,
                steps=steps_to_ask(first),
                total_steps=0,
                scheduler=build_scheduler(sampler, model.scheduler_config, model.traits.schedule),
                loras=loras,
                conditioning={
                    key: torch.cat([conditioning[key] for _, conditioning in group])
                    for key in group[0][1]
                },
            )
            batch.total_steps = count_denoising_steps(batch, model.pipelines[batch.mode])
            for spec in batch.specs:
                if spec.init_image is not None:
                    batch.init_images.append(self._input_picture(spec, (width, height)))
                if spec.mode == "inpaint" and spec.mask_image is not None:
                    batch.masks.append(decode_mask(spec.mask_image, (width, height)))
            batches.append(batch)
        return batches

    def _input_picture(self, spec: ImageSpec, size: tuple[int, int]) -> Image.Image:
        """A spec's init image at `size`: enlarged by the upscaler for an upscale."""
        assert spec.init_image is not None
        if not spec.upscale:
            return decode_image(spec.init_image, size)
        return self._upscaler.upscale(decode_image(spec.init_image), size)

    def _resize_batch(
        self, indices: list[int], specs: list[ImageSpec], sampler: str, size: tuple[int, int]
    ) -> Batch:
        """Upscales without a detail pass: nothing to encode or denoise."""
        chosen = [specs[index] for index in indices]
        batch = Batch(indices, chosen, "img2img", sampler, *size, 0, 0, None)
        batch.init_images = [self._input_picture(spec, size) for spec in chosen]
        return batch

    def _run(
        self,
        model: LoadedModel,
        batch: Batch,
        done: int,
        total: int,
        on_step: ProgressCallback | None,
        should_cancel: CancelCheck | None,
        previews: Previewer | None = None,
    ) -> list[Image.Image]:
        pipe = model.pipelines[batch.mode]
        pipe.scheduler = batch.scheduler
        model.loras.apply(model.pipelines["text2img"], batch.loras)
        self._offload(pipe)
        denoiser = _denoiser(pipe)

        def step_end(_pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict:
            if on_step is not None:
                on_step(done + step + 1, total)
            if previews is not None and model.preview is not None and previews.due():
                previews.show(
                    model.preview,
                    _pipe,
                    tensors["latents"],
                    batch.indices,
                    batch.width,
                    batch.height,
                )
            if should_cancel is not None and should_cancel():
                raise GenerationCancelled("cancelled")
            return tensors

        def call() -> list[Image.Image]:
            # Seeded on the CPU: the same seed gives the same noise on any device.
            # Fresh generators per attempt: an OOM retry must give the same pictures.
            generators = [torch.Generator("cpu").manual_seed(spec.seed) for spec in batch.specs]
            arguments: dict[str, Any] = {
                key: value.to(self._device, denoiser.dtype)
                for key, value in batch.conditioning.items()
            }
            arguments.update(
                num_inference_steps=batch.steps,
                guidance_scale=batch.specs[0].cfg,
                generator=generators,
                callback_on_step_end=step_end,
                output_type="pil",
            )
            if batch.mode != "img2img":
                arguments.update(width=batch.width, height=batch.height)
            if batch.mode != "text2img":
                arguments.update(image=batch.init_images, strength=batch.specs[0].strength)
            if batch.mode == "inpaint":
                arguments.update(mask_image=batch.masks)
            with torch.no_grad():
                return pipe(**arguments).images

        # An upscale's detail pass paints a big picture: the VAE decodes it in tiles.
        with vae_tiling(pipe, batch.specs[0].upscale > 0):
            pictures = call_with_memory_fallback(pipe, call)
        if batch.mode == "inpaint":
            pictures = [
                paste_unmasked(picture, original, mask)
                for picture, original, mask in zip(
                    pictures, batch.init_images, batch.masks, strict=True
                )
            ]
        return pictures

    def _offload(self, pipe: Any) -> None:
        """[engine] offload: CPU-offload hooks on the pipeline about to run (the three
        pipelines share modules, so the hooks follow the one in use)."""
        mode = self._settings.offload
        if mode == "none" or not self._device.startswith("cuda") or pipe is self._offloaded:
            return
        if mode == "model":
            pipe.enable_model_cpu_offload(device=self._device)
        else:
            pipe.enable_sequential_cpu_offload(device=self._device)
        self._offloaded = pipe

    def _finish(
        self, model: LoadedModel, batch: Batch, position: int, picture: Image.Image, nsfw: bool
    ) -> GeneratedImage:
        spec = batch.specs[position]
        parameters = format_parameters(
            ImageParameters(
                prompt=spec.prompt,
                # A negative prompt the family ignores did not make the picture.
                negative_prompt=spec.negative_prompt if model.traits.uses_negative else "",
                steps=spec.steps,
                sampler=batch.sampler,
                cfg=spec.cfg,
                seed=spec.seed,
                width=picture.width,
                height=picture.height,
                model=model.source.display_name,
                denoising_strength=spec.strength
                if batch.mode != "text2img" and batch.steps > 0
                else None,
                hires_upscale=spec.upscale or None,
                hires_upscaler=self._upscaler.name if spec.upscale else "",
                lora_hashes={name: lora_hash(path) for name, path, _ in batch.loras},
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


def _denoiser(pipe: Any) -> Any:
    return pipe.unet if hasattr(pipe, "unet") else pipe.transformer


def _size_multiple(pipe: Any, traits: FamilyTraits) -> int:
    if hasattr(pipe, "unet"):
        latent = 2 ** (len(pipe.unet.config.block_out_channels) - 1)
    else:
        latent = traits.latent_multiple
    return math.lcm(8, pipe.vae_scale_factor * latent)


def _moved(model: LoadedModel, device: str) -> LoadedModel:
    if _denoiser(model.pipelines["text2img"]).device.type != torch.device(device).type:
        model.prompts.clear()  # encodings on the old device
        for pipe in model.pipelines.values():
            pipe.to(device)
    return model


def _group_by_batch_key(specs: list[ImageSpec]) -> list[list[int]]:
    groups: dict[tuple[object, ...], list[int]] = {}
    for index, spec in enumerate(specs):
        groups.setdefault(spec.batch_key(), []).append(index)
    return list(groups.values())
