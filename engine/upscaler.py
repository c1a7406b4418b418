"""Enlarging a picture for an upscale job: a super-resolution model run in tiles, or Lanczos.

`[upscale] model` names a model file of any architecture spandrel detects (ESRGAN,
RealESRGAN, SwinIR, ...). It is loaded once, with the engine, so a file that is not
such a model stops the start with a clear line instead of failing a user's job.

The model runs on overlapping tiles: a 4x model on a 1024 px picture would otherwise
need activations for 4096 px at once. Each tile's output fades in and out over the
overlap, and the sum is divided by the summed weights, so no seam shows. The model's
output (its own scale) is then resized to exactly the size the job asks for.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine.loading import first_line, free_memory
from engine.types import EngineError, ModelLoadError, UpscaleSettings

log = logging.getLogger(__name__)

LANCZOS = "Lanczos"  # the name A1111 gives its plain resize upscaler

TileModel = Callable[[torch.Tensor], torch.Tensor]


class Upscaler:
    """Enlarges pictures to a given size; `name` is what the PNG records."""

    def __init__(self, name: str, model: Any = None, tile: int = 512, overlap: int = 32) -> None:
        self.name = name
        self._model = model  # a spandrel ImageModelDescriptor, or None for Lanczos
        self._tile = tile
        self._overlap = overlap

    @property
    def scale(self) -> int:
        return int(self._model.scale) if self._model is not None else 1

    def upscale(self, picture: Image.Image, size: tuple[int, int]) -> Image.Image:
        """`picture` enlarged by the model (if any), then resized to exactly `size`."""
        if self._model is not None:
            try:
                picture = self._run_model(picture)
            except torch.cuda.OutOfMemoryError:
                free_memory()
                raise EngineError(
                    "out of GPU memory while upscaling; a smaller [upscale] tile needs less"
                ) from None
            except Exception as exc:  # the job fails with a reason; the engine stays up
                log.exception("upscaling failed")
                raise EngineError(f"upscaling failed: {first_line(exc)}") from None
        if picture.size != size:
            picture = picture.resize(size, Image.Resampling.LANCZOS)
        return picture

    def _run_model(self, picture: Image.Image) -> Image.Image:
        model = self._model
        parameter = next(model.model.parameters())
        pixels = torch.from_numpy(np.array(picture.convert("RGB"))).permute(2, 0, 1)[None]
        pixels = pixels.to(parameter.device, parameter.dtype) / 255.0
        # Models that tile themselves (or must see the whole picture) get it whole.
        tile = self._tile if model.tiling.name == "SUPPORTED" else max(picture.size)
        with torch.inference_mode():
            output = run_tiled(model, pixels, model.scale, tile, self._overlap)
        array = (output[0].permute(1, 2, 0).clamp(0, 1) * 255.0).round().to(torch.uint8)
        return Image.fromarray(array.numpy())


def load_upscaler(settings: UpscaleSettings, device: str, dtype: torch.dtype) -> Upscaler:
    """The configured model on `device`, or Lanczos when none is configured.

    Raises ModelLoadError, naming the file, when it cannot be read or is not an
    image-to-image model spandrel knows.
    """
    if not settings.model:
        return Upscaler(LANCZOS)
    path = Path(settings.model)
    where = f"[upscale] model {path}"
    if not path.is_file():
        raise ModelLoadError(f"{where}: no such file")
    spandrel = import_spandrel()
    try:
        descriptor = spandrel.ModelLoader(device="cpu").load_from_file(path)
    except spandrel.UnsupportedModelError:
        raise ModelLoadError(
            f"{where}: not a super-resolution model spandrel recognises (ESRGAN, SwinIR, ...)"
        ) from None
    except Exception as exc:  # unpickling, safetensors, zip and shape errors alike
        raise ModelLoadError(f"{where}: cannot be loaded: {first_line(exc)}") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise ModelLoadError(f"{where}: takes a mask too ({descriptor.architecture.name})")
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise ModelLoadError(f"{where}: not an RGB model")
    descriptor.to(device).eval()
    if device.startswith("cuda"):
        # Half precision where the architecture allows it: twice as fast, half the memory.
        if dtype == torch.float16 and descriptor.supports_half:
            descriptor.half()
        elif dtype == torch.bfloat16 and descriptor.supports_bfloat16:
            descriptor.bfloat16()
    log.info(
        "upscaler %s: %s, %dx, on %s",
        path.stem,
        descriptor.architecture.name,
        descriptor.scale,
        device,
    )
    return Upscaler(path.stem, descriptor, settings.tile, settings.overlap)


def run_tiled(
    model: TileModel, pixels: torch.Tensor, scale: int, tile: int, overlap: int
) -> torch.Tensor:
    """`model` over `pixels` (1, C, H, W) in tiles of `tile` px sharing `overlap` px.

    The result is assembled on the CPU in float32: only one tile's activations are
    on the device at a time.
    """
    _, _, height, width = pixels.shape
    if height <= tile and width <= tile:
        return model(pixels).float().cpu()
    output: torch.Tensor | None = None
    weights = torch.zeros(1, 1, height * scale, width * scale)
    for top, bottom in _spans(height, tile, overlap):
        for left, right in _spans(width, tile, overlap):
            piece = model(pixels[:, :, top:bottom, left:right]).float().cpu()
            if output is None:
                output = torch.zeros(1, piece.shape[1], height * scale, width * scale)
            fade = _feather(
                (bottom - top) * scale,
                (right - left) * scale,
                overlap * scale,
                (top > 0, bottom < height, left > 0, right < width),
            )
            rows = slice(top * scale, bottom * scale)
            columns = slice(left * scale, right * scale)
            output[:, :, rows, columns] += piece * fade
            weights[:, :, rows, columns] += fade
    assert output is not None
    return output / weights


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Start and end of each tile along one side: every `tile - overlap` px, the last
    one flush with the end (so it may overlap its neighbour by more)."""
    if length <= tile:
        return [(0, length)]
    stride = max(1, tile - overlap)
    starts = [*range(0, length - tile, stride), length - tile]
    return [(start, start + tile) for start in starts]


def _feather(
    height: int, width: int, ramp: int, inner: tuple[bool, bool, bool, bool]
) -> torch.Tensor:
    """A tile's weights: 1 inside, rising linearly over `ramp` px on each side that meets
    another tile (top, bottom, left, right); sides on the picture's edge stay at 1.
    Never 0, so a pixel only one tile covers keeps that tile's value."""
    top, bottom, left, right = inner

    def profile(size: int, start: bool, end: bool) -> torch.Tensor:
        weight = torch.ones(size)
        span = min(ramp, size // 2)
        if span > 0:
            rising = torch.arange(1, span + 1, dtype=torch.float32) / (span + 1)
            if start:
                weight[:span] = rising
            if end:
                weight[size - span :] = rising.flip(0)
        return weight

    rows = profile(height, top, bottom)[:, None]
    columns = profile(width, left, right)[None, :]
    return (rows * columns)[None, None]


def import_spandrel() -> Any:
    """spandrel, imported even where torchvision is not installed.

    spandrel imports torchvision only for two architectures that are not upscalers
    (LaMa inpainting, RestoreFormer faces). PyPI has no CPU build of torchvision for
    Linux, and its CUDA build breaks the CPU torch (and transformers with it), so a CPU
    install goes without it; the stand-in below exists only while spandrel imports.
    """
    if not _installed("spandrel"):
        raise ModelLoadError(
            "[upscale] model needs the spandrel package: pip install 'atelier[upscale]'"
        )
    if _installed("torchvision"):
        import spandrel
    else:
        # Stood in before the first import: a failed one would leave spandrel's
        # submodules half-registered.
        with _torchvision_stand_in():
            import spandrel
    return spandrel


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


@contextlib.contextmanager
def _torchvision_stand_in() -> Iterator[None]:
    def missing(*_args: object, **_kwargs: object) -> None:
        raise ModelLoadError("this architecture needs torchvision, which is not installed")

    names = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")
    modules = {name: types.ModuleType(name) for name in names}
    functional = modules["torchvision.transforms.functional"]
    for attribute in ("rotate", "normalize"):
        setattr(functional, attribute, missing)
    functional.InterpolationMode = types.SimpleNamespace(BILINEAR="bilinear", NEAREST="nearest")  # type: ignore[attr-defined]
    modules["torchvision"].transforms = modules["torchvision.transforms"]  # type: ignore[attr-defined]
    modules["torchvision.transforms"].functional = functional  # type: ignore[attr-defined]
    sys.modules.update(modules)
    try:
        yield
    finally:
        # Nothing else may take the stand-in for the real package.
        for name in names:
            sys.modules.pop(name, None)


@contextlib.contextmanager
def vae_tiling(pipe: Any, on: bool) -> Iterator[None]:
    """The VAE encodes and decodes in tiles while `on` (where it can): an upscale's
    detail pass works on pictures several times the model's native size."""
    vae = getattr(pipe, "vae", None)
    if not on or not hasattr(vae, "enable_tiling"):
        yield
        return
    vae.enable_tiling()
    try:
        yield
    finally:
        vae.disable_tiling()  # other jobs keep the untiled VAE's exact pictures
