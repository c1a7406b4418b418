"""What a model is, read without loading it (and without torch): its family, its
native size, the size grid it accepts and the defaults it starts from.

The bot checks requests against this before the engine sees them. It reads a diffusers
folder's `model_index.json` and component configs, the same files in the Hugging Face
cache for a hub id, or a single `.safetensors` file's JSON header (the tensor names
tell the family; the weights are never read).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.families import FAMILIES, FamilyTraits, family, family_of_pipeline
from engine.families.flux import SCHNELL_CFG, SCHNELL_STEPS

# Safetensors headers are JSON, a few MB at most even for big checkpoints.
MAX_HEADER_BYTES = 100_000_000
REAL_VAE_FACTOR = 8  # every real SD/SDXL/SD3/Flux VAE; used when no config says otherwise

# Tensor names that mark each family in original-layout single files (as A1111,
# ComfyUI and civitai distribute them), checked in this order.
_FILE_MARKERS: list[tuple[str, tuple[str, ...]]] = [
    ("flux", ("double_blocks.0.img_attn.norm.key_norm.scale",)),
    ("sd3", ("joint_blocks.0.context_block.adaLN_modulation.1.bias",)),
    ("sdxl", ("conditioner.embedders.1.model.positional_embedding", "label_emb.0.0.weight")),
    ("sd", ("cond_stage_model.", "model.diffusion_model.input_blocks.0.0.weight")),
]
# SD 2.x keeps OpenCLIP under `cond_stage_model.model`; its best-known checkpoints
# (2.0/2.1 768-v) paint at 768.
_SD2_MARKER = "cond_stage_model.model.token_embedding.weight"
_FLUX_GUIDANCE_MARKER = "guidance_in.in_layer.weight"


class InspectError(ValueError):
    """The model's family or config cannot be found; the message is one line."""


@dataclass(frozen=True)
class ModelInfo:
    family: str
    width: int  # native resolution: the denoiser's sample size x the VAE factor
    height: int
    size_multiple: int  # width and height must be multiples of this
    default_steps: int
    default_cfg: float
    default_sampler: str
    variant: str = ""  # "schnell" for a Flux model without guidance embedding

    @property
    def traits(self) -> FamilyTraits:
        return FAMILIES[self.family]


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """Tensor name -> {dtype, shape, data_offsets}, from the file's JSON header."""
    try:
        with path.open("rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            if not 0 < length <= MAX_HEADER_BYTES:
                raise InspectError("not a safetensors file")
            header = json.loads(file.read(length))
    except (OSError, struct.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InspectError("not a readable safetensors file") from exc
    if not isinstance(header, dict):
        raise InspectError("not a safetensors file")
    header.pop("__metadata__", None)
    return header


def family_from_keys(keys: list[str]) -> str | None:
    """The family whose marker tensors the file holds; None when none matches."""
    for name, markers in _FILE_MARKERS:
        if any(
            key.endswith(marker) or key.startswith(marker) for key in keys for marker in markers
        ):
            return name
    return None


def inspect_model(location: str, family_name: str = "") -> ModelInfo:
    """Inspect a folder, a single file or a hub id; `family_name` ("" = detect) wins
    over what the files say. A hub id that is not cached gets its family's defaults."""
    path = Path(location).expanduser()
    if path.is_dir():
        return _inspect_folder(path, family_name)
    if path.is_file():
        return _inspect_file(path, family_name)
    folder = _cached_hub_folder(location)
    if folder is not None:
        return _inspect_folder(folder, family_name)
    return _defaults(family(family_name or "sd"))


def family_defaults(family_name: str = "") -> ModelInfo:
    """What a model of this family (SD when "") is like at the real size of its kind."""
    return _defaults(family(family_name or "sd"))


def _inspect_folder(folder: Path, family_name: str) -> ModelInfo:
    index = _read_json(folder / "model_index.json")
    detected = family_of_pipeline(str(index.get("_class_name", ""))) if index else None
    name = family_name or detected
    if name is None:
        raise InspectError(
            "not a diffusers model of a known family "
            "(no model_index.json naming an SD, SDXL, SD 3 or Flux pipeline)"
        )
    traits = family(name)
    denoiser = _read_json(folder / traits.denoiser / "config.json") or {}
    vae = _read_json(folder / "vae" / "config.json") or {}
    vae_factor = 2 ** (len(vae["block_out_channels"]) - 1) if "block_out_channels" in vae else 8
    sample_size = denoiser.get("sample_size") or traits.default_sample_size
    if isinstance(sample_size, list):
        sample_size = sample_size[0]
    if traits.denoiser == "unet":
        blocks = len(denoiser.get("block_out_channels", (0, 0, 0, 0)))
        latent_multiple = 2 ** (blocks - 1)
    else:
        latent_multiple = int(denoiser.get("patch_size", 1)) * traits.latent_multiple
        if name == "flux":
            latent_multiple = traits.latent_multiple
    variant = "schnell" if name == "flux" and denoiser.get("guidance_embeds") is False else ""
    return _defaults(
        traits, sample_size * vae_factor, math.lcm(8, vae_factor * latent_multiple), variant
    )


def _inspect_file(path: Path, family_name: str) -> ModelInfo:
    if path.suffix.lower() != ".safetensors":
        # A pickled .ckpt cannot be read without unpickling it; assume SD unless told.
        return _defaults(family(family_name or "sd"))
    keys = list(read_safetensors_header(path))
    name = family_name or family_from_keys(keys)
    if name is None:
        raise InspectError(
            "cannot tell which model family this file is "
            '(set family = "sd", "sdxl", "sd3" or "flux" for it)'
        )
    if (path.parent / "model_index.json").is_file():
        return _inspect_folder(path.parent, name)
    traits = family(name)
    side = traits.default_sample_size * REAL_VAE_FACTOR
    if name == "sd" and _SD2_MARKER in keys:
        side = 768
    variant = ""
    if name == "flux" and not any(key.endswith(_FLUX_GUIDANCE_MARKER) for key in keys):
        variant = "schnell"
    multiple = 64 if traits.denoiser == "unet" else REAL_VAE_FACTOR * traits.latent_multiple
    return _defaults(traits, side, multiple, variant)


def _defaults(
    traits: FamilyTraits, side: int | None = None, multiple: int | None = None, variant: str = ""
) -> ModelInfo:
    side = side or traits.default_sample_size * REAL_VAE_FACTOR
    steps, cfg = traits.default_steps, traits.default_cfg
    if variant == "schnell":
        steps, cfg = SCHNELL_STEPS, SCHNELL_CFG
    return ModelInfo(
        family=traits.name,
        width=side,
        height=side,
        size_multiple=multiple or 64,
        default_steps=steps,
        default_cfg=cfg,
        default_sampler=traits.default_sampler,
        variant=variant,
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _cached_hub_folder(repo_id: str) -> Path | None:
    """The cached snapshot holding the repo's model_index.json, if it is cached."""
    if repo_id.count("/") != 1:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, "model_index.json")
    return Path(found).parent if isinstance(found, str) else None
