"""Tiny random-weight pipelines of the SDXL, SD 3 and Flux families, built on disk.

Like `tests/tiny_model.py` (SD 1.x): nothing is downloaded, every module comes from a
small config with random weights, tokenizers are written here, and `save_pretrained`
gives the folder layout a real model has, so it loads through the same code path.
"""

from .flux import build_tiny_flux
from .loras import build_tiny_lora
from .sd3 import build_tiny_sd3
from .sdxl import build_tiny_sdxl, save_sdxl_single_file

__all__ = [
    "build_tiny_flux",
    "build_tiny_lora",
    "build_tiny_sd3",
    "build_tiny_sdxl",
    "save_sdxl_single_file",
]
