"""Tiny random LoRAs made with peft for the tiny pipelines, saved the way diffusers
saves trained ones (`save_lora_weights`), so they load as a downloaded LoRA does."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def build_tiny_lora(model_dir: Path, path: Path, seed: int = 0) -> Path:
    """A rank-4 LoRA on the denoiser's attention of the model in `model_dir`, with
    random (not zero) up-weights so that it visibly changes pictures."""
    import diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    index = json.loads((model_dir / "model_index.json").read_text())
    pipeline_class = getattr(diffusers, index["_class_name"])
    name = "unet" if "unet" in index else "transformer"
    denoiser_class = getattr(diffusers, index[name][1])
    denoiser = denoiser_class.from_pretrained(model_dir / name)
    torch.manual_seed(seed)
    denoiser.add_adapter(
        LoraConfig(r=4, lora_alpha=4, target_modules=_TARGETS, init_lora_weights=False)
    )
    layers = get_peft_model_state_dict(denoiser)
    with tempfile.TemporaryDirectory() as folder:
        pipeline_class.save_lora_weights(folder, **{f"{name}_lora_layers": layers})
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(Path(folder) / "pytorch_lora_weights.safetensors", path)
    return path
