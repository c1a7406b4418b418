"""The optional NSFW check: diffusers' StableDiffusionSafetyChecker run on each picture.

It only flags pictures; what happens to a flagged one (block or spoiler) is the bot's
choice, so the picture itself is left as it is.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine.loading import first_line
from engine.types import ModelLoadError

log = logging.getLogger(__name__)


class NsfwChecker:
    """Loads the classifier once from a hub id or a folder holding both the checker
    weights and its CLIP image processor config (the layout of
    CompVis/stable-diffusion-safety-checker)."""

    def __init__(self, source: str, device: str, dtype: torch.dtype) -> None:
        from diffusers.pipelines.stable_diffusion.safety_checker import (
            StableDiffusionSafetyChecker,
        )
        from transformers import CLIPImageProcessor

        try:
            self._checker: Any = StableDiffusionSafetyChecker.from_pretrained(
                source, dtype=dtype
            ).to(device)
            self._processor: Any = CLIPImageProcessor.from_pretrained(source)
        except Exception as exc:
            # Same reasoning as model loading: many exception types, one line for the admin.
            log.warning("loading the NSFW classifier %s failed", source, exc_info=True)
            raise ModelLoadError(
                f"cannot load the NSFW classifier {Path(source).name!r}: {first_line(exc)}"
            ) from None
        self._checker.eval()
        # diffusers warns that it "returns a black image" for flagged pictures; we only
        # read the flags, so that warning would mislead whoever reads the log.
        logging.getLogger(StableDiffusionSafetyChecker.__module__).setLevel(logging.ERROR)
        self._device = device
        self._dtype = dtype

    def flags(self, pictures: list[Image.Image]) -> list[bool]:
        """True for each picture the classifier considers NSFW."""
        pixel_values = self._processor(images=pictures, return_tensors="pt").pixel_values
        # The checker blacks out flagged arrays in place; these copies are thrown away.
        arrays = np.stack([np.asarray(p, dtype=np.float32) / 255.0 for p in pictures])
        with torch.no_grad():
            _, flagged = self._checker(
                images=arrays, clip_input=pixel_values.to(self._device, self._dtype)
            )
        return [bool(flag) for flag in flagged]
