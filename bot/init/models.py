"""The models `init` offers by name, and how a hub id or a local path becomes one."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


class BadModel(ValueError):
    """Not a known name, an existing model folder or file, or a hub id."""


@dataclass(frozen=True)
class ModelChoice:
    name: str  # the [models.NAME] users type with /model
    source: str  # as written in the config: hub id, or a path from the config's folder
    summary: str = ""  # what it is, for the menu
    gpu_gb: int = 0  # GPU memory it wants
    download_gb: int = 0  # about how much the first start downloads from the hub
    width: int | None = None  # None: not written, the config's default applies
    height: int | None = None
    default_steps: int | None = None
    default_cfg: float | None = None
    sampler: str | None = None

    @property
    def from_hub(self) -> bool:
        return self.source.count("/") == 1 and not self.source.startswith((".", "/", "~"))


# Well-known checkpoints, the defaults that suit each, and their download sizes (the
# full-precision weights diffusers fetches into the Hugging Face cache).
KNOWN_MODELS: dict[str, ModelChoice] = {
    "sd15": ModelChoice(
        "sd15",
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "Stable Diffusion 1.5, 512 px, quick",
        gpu_gb=6,
        download_gb=4,
        width=512,
        height=512,
        default_steps=20,
        default_cfg=7.0,
    ),
    "sdxl": ModelChoice(
        "sdxl",
        "stabilityai/stable-diffusion-xl-base-1.0",
        "SDXL base 1.0, 1024 px",
        gpu_gb=12,
        download_gb=14,
        width=1024,
        height=1024,
        default_steps=25,
        default_cfg=7.0,
    ),
    "flux-schnell": ModelChoice(
        "flux-schnell",
        "black-forest-labs/FLUX.1-schnell",
        "FLUX.1 schnell, 1024 px in 4 steps",
        gpu_gb=24,
        download_gb=34,
        width=1024,
        height=1024,
        default_steps=4,
        # schnell is distilled without classifier-free guidance, and samples by flow
        # matching: plain Euler, not the ancestral default.
        default_cfg=0.0,
        sampler="Euler",
    ),
}
DEFAULT_MODEL = "sd15"


def resolve_model(text: str, *, config_dir: Path, cwd: Path) -> ModelChoice:
    """A known name, an existing folder or file (relative to `cwd`), or a hub id."""
    text = text.strip()
    if text in KNOWN_MODELS:
        return KNOWN_MODELS[text]
    # abspath, not resolve(): a symlinked models folder inside the config's folder stays
    # inside it.
    path = Path(os.path.abspath(cwd / Path(text).expanduser()))
    looks_like_path = text.startswith((".", "/", "~")) or text.lower().endswith(
        SINGLE_FILE_SUFFIXES
    )
    if path.exists():
        return _local_model(path, Path(os.path.abspath(config_dir)))
    if looks_like_path or not _HUB_ID.fullmatch(text):
        known = ", ".join(KNOWN_MODELS)
        raise BadModel(
            f"{text!r}: not one of {known}, an existing folder or file, or a hub id (owner/name)"
        )
    return ModelChoice(_name_of(text.rsplit("/", 1)[1]), text)


def _local_model(path: Path, config_dir: Path) -> ModelChoice:
    if path.is_dir() and not (path / "model_index.json").is_file():
        raise BadModel(f"{path}: not a diffusers model folder (it has no model_index.json)")
    if path.is_file() and path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
        raise BadModel(f"{path}: a single-file model is a .safetensors or .ckpt file")
    # Relative to the config's folder when inside it, so the folder can move as a whole
    # (or be mounted into a container) and the config still finds its models; "./"
    # keeps `models/x` from reading as a hub id.
    if path.is_relative_to(config_dir):
        source = f"./{path.relative_to(config_dir).as_posix()}"
    else:
        source = str(path)
    return ModelChoice(_name_of(path.stem if path.is_file() else path.name), source)


def _name_of(text: str) -> str:
    """A name users can type: lowercase letters, digits, `-` and `_`."""
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-") or "model"
