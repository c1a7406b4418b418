"""The in-process engine: one loaded model, three pipelines sharing its weights.

`Engine` is used from one thread at a time (the engine process runs one job at a
time), so swapping `pipe.scheduler` per call is safe. What differs between model
families (prompt encoding, samplers, which arguments a pipeline takes) comes from
`engine.families`; this module is the same for all of them. Which specs share a call
is engine/planning.py, a call's arguments engine/calls.py, the PNGs engine/finishing.py.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from engine.calls import call_arguments, pasted_back
from engine.duty import DutyMeter
from engine.encoding import Finisher, PendingImages
from engine.finishing import finish_picture
from engine.images import round_size
from engine.inspect import ModelInfo
from engine.loaded import LoadedModel, denoiser, moved, size_multiple
from engine.loading import (
    ModelSource,
    free_memory,
    load_pipelines,
    resolve_device,
    resolve_dtype,
    resolve_source,
)
from engine.loras import LoraSet
from engine.memory import call_with_memory_fallback
from engine.nsfw import NsfwChecker
from engine.planning import Batch, group_by_batch_key, plan
from engine.previews import LatentPreview, Previewer, load_taesd
from engine.speed import apply_speed_options
from engine.types import (
    CancelCheck,
    EngineError,
    EngineSettings,
    GeneratedImage,
    GenerationCancelled,
    ImageSpec,
    ModelLoadError,
    ModelOptions,
    ProgressCallback,
)
from engine.upscaler import load_upscaler, vae_tiling

log = logging.getLogger(__name__)

# The load-time check: one step at the smallest size the model takes.
SMOKE_SIDE = 64


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
                self._model = moved(parked, self._device)
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
            size_multiple=size_multiple(text2img, traits),
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
        self._parked[model.source] = moved(model, "cpu")
        while len(self._parked) > self._settings.keep_in_ram:
            self._parked.popitem(last=False)

    def _restore(self, previous: ModelSource) -> None:
        """Back to the model loaded before a failed load: from RAM if parked, else
        loaded again (it loaded and painted before, so it needs no new check)."""
        try:
            parked = self._parked.pop(previous, None)
            self._model = (
                moved(parked, self._device) if parked is not None else self._build_model(previous)
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
        snap = self._settings.compile and self._device.startswith("cuda")
        batches = [
            batch
            for indices in group_by_batch_key(specs)
            for batch in plan(model, indices, specs, upscaler=self._upscaler, snap=snap)
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
        upscaler = self._upscaler.name

        def finish() -> list[GeneratedImage]:
            flags = nsfw.flags(pictures) if nsfw else [False] * len(pictures)
            return [
                finish_picture(model, batch, position, picture, flags[position], upscaler)
                for position, picture in enumerate(pictures)
            ]

        return finish

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
        net = denoiser(pipe)

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
            # Fresh arguments per attempt: an OOM retry must give the same pictures.
            arguments = call_arguments(batch, self._device, net.dtype, step_end)
            with torch.no_grad():
                return pipe(**arguments).images

        # An upscale's detail pass paints a big picture: the VAE decodes it in tiles.
        with vae_tiling(pipe, batch.specs[0].upscale > 0):
            pictures = call_with_memory_fallback(pipe, call)
        return pasted_back(batch, pictures)

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
