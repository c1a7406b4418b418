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

from engine.families import FamilyTraits, family_of_pipeline
from engine.inspect import InspectError, ModelInfo, inspect_model
from engine.types import EngineError, Mode, ModelLoadError, ModelOptions

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


def load_pipelines(
    source: ModelSource, options: ModelOptions, device: str, dtype: torch.dtype
) -> tuple[FamilyTraits, ModelInfo, dict[Mode, Any]]:
    """The model's family, what inspecting it said, and its text2img, img2img and
    inpaint pipelines on `device`, all three over one set of weights."""
    if source.kind == "hub":
        _download(source)
    try:
        info = inspect_model(source.location, options.family)
    except InspectError as exc:
        raise ModelLoadError(f"cannot load {Path(source.location).name}: {exc}") from None
    traits = info.traits
    try:
        text2img = _load_text2img(source, traits, options, dtype)
        loaded = family_of_pipeline(type(text2img).__name__)
        if loaded != traits.name:
            raise ModelLoadError(
                f"{source.display_name} is configured as {traits.label} but its files hold "
                f"a {type(text2img).__name__}; fix its `family`"
            )
        pipelines = _with_other_modes(text2img, options, dtype)
        for pipe in pipelines.values():
            pipe.to(device)
            pipe.set_progress_bar_config(disable=True)
    except ModelLoadError:
        raise
    except Exception as exc:
        # diffusers, transformers, safetensors and the hub client raise many types
        # (OSError, ValueError, KeyError, ...); the admin needs one line, the log the rest.
        log.warning("loading %s failed", source.location, exc_info=True)
        raise ModelLoadError(_explain_failure(source, exc)) from None
    return traits, info, pipelines


def _download(source: ModelSource) -> None:
    """A hub model not yet in the cache is fetched first, with progress (engine/download.py)."""
    from engine.download import fetch

    try:
        fetch(source.location, source.display_name)
    except Exception as exc:
        log.warning("downloading %s failed", source.location, exc_info=True)
        raise ModelLoadError(_explain_failure(source, exc)) from None


def _load_text2img(
    source: ModelSource, traits: FamilyTraits, options: ModelOptions, dtype: torch.dtype
) -> Any:
    import diffusers
    from diffusers import AutoPipelineForText2Image

    common: dict[str, Any] = {"dtype": dtype}
    if traits.name == "sd":
        # diffusers' own safety checker is replaced by Atelier's optional classifier.
        common.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    if options.vae:
        common["vae"] = _load_vae(options.vae, dtype)
    if source.kind == "file":
        pipeline_class = getattr(diffusers, traits.pipeline_class)
        return _load_single_file(pipeline_class, Path(source.location), common)
    return AutoPipelineForText2Image.from_pretrained(source.location, **common)


def _with_other_modes(text2img: Any, options: ModelOptions, dtype: torch.dtype) -> dict[Mode, Any]:
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

    inpaint_parts: dict[str, Any] = {}
    if options.inpaint_source:
        # Only the denoiser differs: text encoders and VAE stay shared.
        name = "unet" if hasattr(text2img, "unet") else "transformer"
        denoiser_class = type(getattr(text2img, name))
        inpaint_parts[name] = _load_component(denoiser_class, options.inpaint_source, name, dtype)
    return {
        "text2img": text2img,
        # from_pipe reuses the same modules: no second copy of the weights.
        "img2img": AutoPipelineForImage2Image.from_pipe(text2img),
        "inpaint": AutoPipelineForInpainting.from_pipe(text2img, **inpaint_parts),
    }


def _load_vae(location: str, dtype: torch.dtype) -> Any:
    from diffusers import AutoencoderKL

    try:
        return _load_component(AutoencoderKL, location, "vae", dtype)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot load the VAE {Path(location).name!r}: {first_line(exc)}"
        ) from None


def _load_component(component_class: Any, location: str, subfolder: str, dtype: torch.dtype) -> Any:
    """One model component from a file, a folder (with or without `subfolder`) or a hub id."""
    path = Path(location).expanduser()
    if path.is_file():
        return component_class.from_single_file(str(path), dtype=dtype)
    if path.is_dir() and not (path / subfolder).is_dir():
        return component_class.from_pretrained(str(path), dtype=dtype)
    return component_class.from_pretrained(location, subfolder=subfolder, dtype=dtype)


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
            "tokenizer files, as the model's diffusers repo on the hub has them), "
            "or let the engine reach the hub once to cache it"
        )
    return f"cannot load {name}: {first_line(exc)}"


def first_line(exc: Exception) -> str:
    """The error's first line, cut to a length an admin can read in a chat reply."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."
