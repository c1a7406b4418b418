"""Finding and loading models: configured names, local folders, single files, hub ids.

Every failure becomes a `ModelLoadError` with one short line for the admin; the full
traceback goes to the log only.
"""

from __future__ import annotations

import gc
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.types import EngineError, ModelLoadError

log = logging.getLogger(__name__)

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from and the name it is shown under."""

    display_name: str
    location: str  # a folder, a single file, or a hub id
    kind: str  # "folder" | "file" | "hub"


def resolve_device(setting: str) -> str:
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError(f"device {setting!r} is configured but CUDA is not available here")
    if setting != "cpu" and not re.fullmatch(r"cuda(:\d+)?", setting):
        raise EngineError(f"unknown device {setting!r}; use auto, cpu, cuda or cuda:N")
    return setting


def resolve_dtype(setting: str, device: str) -> torch.dtype:
    """fp16 on CUDA and fp32 on CPU unless the config names a dtype."""
    if setting == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    if setting not in _DTYPES:
        raise EngineError(f"unknown dtype {setting!r}; use auto, float16, bfloat16 or float32")
    return _DTYPES[setting]


def resolve_source(name_or_path: str, models: dict[str, str]) -> ModelSource:
    """A configured name, an existing folder or file, or a hub id — in that order."""
    if name_or_path in models:
        found = _locate(models[name_or_path])
        return ModelSource(name_or_path, found.location, found.kind)
    return _locate(name_or_path, configured=sorted(models))


def _locate(value: str, configured: list[str] | None = None) -> ModelSource:
    path = Path(value).expanduser()
    if path.is_dir():
        return ModelSource(path.resolve().name, str(path), "folder")
    if path.is_file():
        if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
            raise ModelLoadError(f"{path.name}: a single-file model must be .safetensors or .ckpt")
        return ModelSource(path.stem, str(path), "file")
    looks_like_path = value.startswith((".", "/", "~")) or value.lower().endswith(
        SINGLE_FILE_SUFFIXES
    )
    if not looks_like_path and _HUB_ID.match(value):
        return ModelSource(value.rsplit("/", 1)[1], value, "hub")
    if configured is not None and not looks_like_path:
        names = ", ".join(configured) or "none"
        raise ModelLoadError(
            f"unknown model {value!r}: not a configured model ({names}), "
            "an existing folder or file, or a hub id"
        )
    raise ModelLoadError(f"model not found: no such file or folder {value!r}")


def free_memory() -> None:
    """Give freed tensors back before a new model claims the memory."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def load_pipeline(source: ModelSource, device: str, dtype: torch.dtype) -> Any:
    """A StableDiffusionPipeline on `device`, without diffusers' safety checker."""
    from diffusers import StableDiffusionPipeline

    common: dict[str, Any] = {
        "dtype": dtype,
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }
    try:
        if source.kind == "file":
            pipe = _load_single_file(StableDiffusionPipeline, Path(source.location), common)
        else:
            pipe = StableDiffusionPipeline.from_pretrained(source.location, **common)
        pipe.to(device)
    except ModelLoadError:
        raise
    except Exception as exc:
        # diffusers, transformers, safetensors and the hub client raise many types
        # (OSError, ValueError, KeyError, ...); the admin needs one line, the log the rest.
        log.warning("loading %s failed", source.location, exc_info=True)
        raise ModelLoadError(_explain_failure(source, exc)) from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _load_single_file(pipeline_class: Any, path: Path, common: dict[str, Any]) -> Any:
    # A single file holds weights only. diffusers needs the architecture's diffusers
    # config beside them; a hub repo keeps both in one folder (model_index.json next to
    # the .safetensors), so such a folder is used as the config. Otherwise diffusers
    # infers the architecture and fetches its config from the hub cache.
    config_folder = path.parent if (path.parent / "model_index.json").is_file() else None
    options = dict(common)
    if config_folder is not None:
        options["config"] = str(config_folder)
    if _hub_offline():
        options["local_files_only"] = True
    return pipeline_class.from_single_file(str(path), **options)


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _explain_failure(source: ModelSource, exc: Exception) -> str:
    from huggingface_hub.errors import LocalEntryNotFoundError

    if source.kind == "hub" and _hub_offline():
        return (
            f"model {source.location!r} is not in the local Hugging Face cache and the hub is "
            "offline (HF_HUB_OFFLINE=1); download it once with the hub online, "
            "or configure a local folder"
        )
    if source.kind == "hub":
        return f"cannot load {source.location!r} from the Hugging Face hub: {first_line(exc)}"
    name = Path(source.location).name
    if source.kind == "file" and isinstance(exc, LocalEntryNotFoundError):
        return (
            f"cannot load {name}: a single-file checkpoint needs its model's diffusers config, "
            "which is not in the local cache and the hub cannot be reached; put the file in a "
            "folder holding that config (model_index.json plus each component's config and "
            "tokenizer files, e.g. from stable-diffusion-v1-5/stable-diffusion-v1-5), "
            "or let the engine reach the hub once to cache it"
        )
    return f"cannot load {name}: {first_line(exc)}"


def first_line(exc: Exception) -> str:
    """The error's first line, cut to a length an admin can read in a chat reply."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."
