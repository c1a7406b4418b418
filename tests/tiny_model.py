"""Build a tiny random-weight Stable Diffusion pipeline on disk, for tests and benches.

Nothing is downloaded: the tokenizer's vocabulary and merges are written here, and
every module is built from a small config with random weights. The folder layout is
the one `save_pretrained` writes, so it loads through the same code path a real
model does.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

# The letters and a few words are enough for CLIP's byte-level BPE to encode any
# ASCII prompt; unknown pieces fall back to <|endoftext|>.
_WORDS = ["a", "cat", "dog", "red", "blue", "hat", "fox", "lighthouse", "dusk", "portrait"]


def _write_tokenizer(folder: Path) -> None:
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    tokens = ["<|startoftext|>", "<|endoftext|>"]
    tokens += [c for c in letters] + [c + "</w>" for c in letters]
    tokens += [str(d) for d in range(10)] + [f"{d}</w>" for d in range(10)]
    tokens += [p for p in ",.!?()[]:-'\""] + [p + "</w>" for p in ",.!?()[]:-'\""]
    tokens += [w + "</w>" for w in _WORDS if len(w) > 1]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    merges = ["#version: 0.2"]
    (folder / "merges.txt").write_text("\n".join(merges) + "\n")
    CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77
    ).save_pretrained(folder)


def build_tiny_pipeline(folder: Path, seed: int = 0) -> Path:
    """Write a tiny SD-1.x-shaped pipeline to `folder` and return it."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    _write_tokenizer(folder / "tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    # Two down blocks: vae_scale_factor is 2, not 8, so tests catch code that assumes 8.
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 32),
        latent_channels=4,
        norm_num_groups=32,
        sample_size=32,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder
