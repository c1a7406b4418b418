"""Live previews: a small JPEG of each picture while it paints, every few seconds.

By default the latents are projected to RGB by a fixed linear map per model family
(`PREVIEW_FACTORS`, `PREVIEW_BIAS` in engine/families/<family>.py): a matrix product
on a latent a few dozen pixels wide, no extra weights, well under a millisecond even on
a CPU. When `[engine] preview_vae` names a local TAESD folder (diffusers'
`AutoencoderTiny`), it decodes them instead: truer colours and edges, for a few ms.

`Previewer` decides *when* (at most once per `interval` seconds per job, the first one
`interval` after the job starts, so a quick job makes none at all) and turns latents
into JPEGs keyed by the picture's index in the job. The pipelines call it from their
step callback; checking `due()` costs one clock read, so steps without a preview pay
nothing.
"""

from __future__ import annotations

import importlib
import io
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image

from engine.types import PreviewCallback

log = logging.getLogger(__name__)

# Longest side of a preview, in pixels: enough to see the composition forming.
MAX_SIDE = 256
JPEG_QUALITY = 70

# What a preview goes to: picture index in the job -> JPEG bytes.
PreviewSink = PreviewCallback


def project(
    latents: torch.Tensor,
    factors: Sequence[Sequence[float]],
    bias: Sequence[float] = (0.0, 0.0, 0.0),
) -> torch.Tensor:
    """(batch, channels, h, w) latents -> (batch, h, w, 3) uint8 RGB, on their device.

    A model whose latents have other channels than the factors (a fine-tune with its
    own VAE, the tiny test models) gets its first three channels, each stretched to the
    full range: rough, but it still shows the shapes forming.
    """
    latents = latents.detach().float()
    if latents.shape[1] == len(factors):
        matrix = torch.tensor(factors, dtype=torch.float32, device=latents.device)
        offset = torch.tensor(bias, dtype=torch.float32, device=latents.device)
        rgb = torch.einsum("bchw,cr->bhwr", latents, matrix) + offset
        rgb = ((rgb + 1.0) / 2.0).clamp(0.0, 1.0)
    else:
        picked = latents[:, [i % latents.shape[1] for i in range(3)]].permute(0, 2, 3, 1)
        low = picked.amin(dim=(1, 2), keepdim=True)
        high = picked.amax(dim=(1, 2), keepdim=True)
        rgb = (picked - low) / (high - low).clamp(min=1e-6)
    return (rgb * 255.0).round().to(torch.uint8)


def preview_size(width: int, height: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """The picture's aspect within `max_side` (never larger than the picture)."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


class LatentPreview:
    """How one loaded model's latents become small RGB pictures."""

    def __init__(self, family: str, taesd: Any | None = None) -> None:
        self._module = importlib.import_module(f"engine.families.{family}")
        self._taesd = taesd

    def spatial(self, pipe: Any, latents: torch.Tensor, width: int, height: int) -> torch.Tensor:
        """(batch, channels, h, w), however the family keeps them (Flux packs them)."""
        unpack = getattr(self._module, "spatial_latents", None)
        return unpack(pipe, latents, width, height) if unpack is not None else latents

    def images(
        self, pipe: Any, latents: torch.Tensor, width: int, height: int
    ) -> list[Image.Image]:
        spatial = self.spatial(pipe, latents, width, height)
        if self._taesd is not None:
            pixels = self._decode(spatial)
        else:
            pixels = project(spatial, self._module.PREVIEW_FACTORS, self._module.PREVIEW_BIAS)
        size = preview_size(width, height)
        return [
            Image.fromarray(array).resize(size, Image.Resampling.BILINEAR)
            for array in pixels.cpu().numpy()
        ]

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        taesd = self._taesd
        parameter = next(taesd.parameters())
        # TAESD decodes the denoiser's latents as they are (its scaling factor is 1).
        with torch.no_grad():
            decoded = taesd.decode(latents.to(parameter.device, parameter.dtype)).sample
        rgb = ((decoded.float() + 1.0) / 2.0).clamp(0.0, 1.0).permute(0, 2, 3, 1)
        return (rgb * 255.0).round().to(torch.uint8)


def load_taesd(folder: str, device: str, dtype: torch.dtype) -> Any:
    """A local diffusers `AutoencoderTiny` folder; None (logged) when it does not load:
    previews then fall back to the projection, nothing else changes."""
    from diffusers import AutoencoderTiny

    try:
        return AutoencoderTiny.from_pretrained(folder, torch_dtype=dtype).to(device).eval()
    except Exception as exc:
        log.warning("[engine] preview_vae %s not loaded (%s); using the projection", folder, exc)
        return None


class Previewer:
    """One job's previews: when they are due, and where they go.

    `offset` is set per pipeline call (the job may be split into several), so the
    indices sent are positions in the whole job.
    """

    def __init__(
        self, interval: float, sink: PreviewSink, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.offset = 0
        self._sink = sink
        self._clock = clock
        self._last = clock() if interval > 0 else math.inf

    def due(self) -> bool:
        return self.interval > 0 and self._clock() - self._last >= self.interval

    def show(
        self,
        maker: LatentPreview,
        pipe: Any,
        latents: torch.Tensor,
        indices: Sequence[int],
        width: int,
        height: int,
    ) -> None:
        """Make and send the previews of one pipeline call's pictures (`indices`: their
        positions in that call). A preview that fails is logged and skipped: it must
        never cost the picture."""
        self._last = self._clock()
        try:
            images = maker.images(pipe, latents, width, height)
            jpegs = {
                self.offset + index: encode_jpeg(image)
                for index, image in zip(indices, images, strict=True)
            }
        except Exception:
            log.exception("a preview failed; the picture goes on")
            return
        self._sink(jpegs)
        # The time to make it does not count towards the next: previews stay `interval` apart.
        self._last = self._clock()
