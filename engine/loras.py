"""LoRAs: finding them by name in the LoRA folder, telling their family, and applying
them to a loaded pipeline through diffusers' LoRA support (peft).

The finding and telling parts are torch-free, for the bot's `/loras` and its checks.
A user only ever names a LoRA; the name is looked up among the files the folder holds,
so no name can reach a path outside it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import struct
from collections import OrderedDict
from pathlib import Path
from typing import Any

from engine.inspect import InspectError, read_safetensors_header
from engine.prompts import LoraTag
from engine.types import EngineError

log = logging.getLogger(__name__)

SUFFIX = ".safetensors"
# Adapters kept loaded in the pipeline at once; the least recently used goes first.
MAX_LOADED = 8


class LoraError(EngineError):
    """A LoRA that does not exist, or does not fit the model."""


def list_loras(folder: Path) -> dict[str, Path]:
    """LoRA name (the file name without `.safetensors`) -> file, for every LoRA file
    under `folder` (subfolders too, as A1111 reads them) that really lies inside it."""
    if not folder.is_dir():
        return {}
    root = folder.resolve()
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob(f"*{SUFFIX}")):
        resolved = path.resolve()
        # A symlink out of the folder is not one of its LoRAs.
        if resolved.is_file() and resolved.is_relative_to(root):
            found.setdefault(path.stem, resolved)
    return found


def find_lora(folder: Path, name: str) -> tuple[str, Path]:
    """The LoRA called `name` (case-insensitive): its own spelling and its file."""
    loras = list_loras(folder)
    wanted = name.strip().lower()
    for known, path in loras.items():
        if known.lower() == wanted:
            return known, path
    available = ", ".join(loras) or "none installed"
    raise LoraError(f"there is no LoRA named {name.strip()!r} (available: {available})")


def lora_hash(path: Path) -> str:
    """A1111's short LoRA hash: SHA-256 of the tensor data after the safetensors
    header ("addnet" hash), first 12 hex digits."""
    stat = path.stat()
    return _hash(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _hash(path: Path, _size: int, _mtime: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        file.seek(8 + length)
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:12]


def lora_family(path: Path) -> str | None:
    """The model family a LoRA was trained for, from its tensor names (and, for UNet
    LoRAs in diffusers' layout, the width of cross-attention); None when unsure."""
    try:
        header = read_safetensors_header(path)
    except InspectError:
        return None
    keys = list(header)
    if any("single_transformer_blocks" in key or "double_blocks" in key for key in keys):
        return "flux"
    if any(
        "joint_blocks" in key or key.startswith("transformer.transformer_blocks") for key in keys
    ):
        return "sd3"
    sdxl_marks = (
        "lora_te2_",
        "text_encoder_2.",
        "lora_unet_input_blocks",
        "lora_unet_output_blocks",
    )
    if any(mark in key for key in keys for mark in sdxl_marks):
        return "sdxl"
    for key, entry in header.items():
        if "attn2" in key and "to_k" in key and ("lora_A" in key or "lora_down" in key):
            width = entry.get("shape", [0, 0])[-1]
            return {768: "sd", 1024: "sd", 2048: "sdxl"}.get(width)
    return None


class LoraSet:
    """The LoRAs loaded into one model's pipeline, as peft adapters, and which are on.

    Loaded adapters stay (a re-roll does not read the file again); a job without LoRAs
    runs with all of them disabled, which is exactly the model without them.
    """

    def __init__(self, folder: Path | None, model_name: str, family_label: str) -> None:
        self._folder = folder
        self._model_name = model_name
        self._family_label = family_label
        self._adapters: OrderedDict[str, str] = OrderedDict()  # LoRA name -> adapter name
        self._count = 0

    def resolve(self, tags: list[LoraTag]) -> list[tuple[str, Path, float]]:
        """(name as installed, file, weight) per tag; LoraError for an unknown name."""
        if tags and self._folder is None:
            raise LoraError("LoRAs are not set up here ([loras] path is not configured)")
        found = []
        for tag in tags:
            assert self._folder is not None
            name, path = find_lora(self._folder, tag.name)
            found.append((name, path, tag.weight))
        return found

    def apply(self, pipe: Any, loras: list[tuple[str, Path, float]]) -> None:
        """Turn exactly these LoRAs on, at their weights, and every other one off."""
        if not loras:
            if self._adapters:
                pipe.disable_lora()
            return
        names = [self._load(pipe, name, path) for name, path, _ in loras]
        pipe.enable_lora()
        pipe.set_adapters(names, adapter_weights=[weight for _, _, weight in loras])

    def _load(self, pipe: Any, name: str, path: Path) -> str:
        if name in self._adapters:
            self._adapters.move_to_end(name)
            return self._adapters[name]
        while len(self._adapters) >= MAX_LOADED:
            _, oldest = self._adapters.popitem(last=False)
            pipe.delete_adapters(oldest)
        self._count += 1
        adapter = f"lora{self._count}"  # peft needs a plain identifier
        try:
            pipe.load_lora_weights(str(path), adapter_name=adapter)
        except Exception as exc:
            log.warning("LoRA %s did not load into %s", name, self._model_name, exc_info=True)
            self._forget(pipe, adapter)
            raise self._misfit(name) from exc
        if not any(adapter in names for names in pipe.get_list_adapters().values()):
            raise self._misfit(name)  # not one of its tensors matched the model
        self._adapters[name] = adapter
        return adapter

    def _misfit(self, name: str) -> LoraError:
        return LoraError(
            f"the LoRA {name!r} does not fit the model {self._model_name} "
            f"({self._family_label}); it was made for another model family"
        )

    @staticmethod
    def _forget(pipe: Any, adapter: str) -> None:
        try:
            pipe.delete_adapters(adapter)
        except Exception:
            log.debug("nothing of adapter %s to remove", adapter, exc_info=True)
