"""A tiny SD 3 pipeline: an MMDiT transformer and three text encoders (CLIP-L and
CLIP-G, both with projections, and T5)."""

from __future__ import annotations

from pathlib import Path

import torch

from .text import (
    HIDDEN,
    HIDDEN_G,
    T5_WIDTH,
    clip_encoder,
    clip_tokenizer,
    t5_encoder,
    t5_tokenizer,
    tiny_vae,
)


def build_tiny_sd3(folder: Path, seed: int = 0) -> Path:
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )

    torch.manual_seed(seed)
    tokenizer = clip_tokenizer(folder / "tokenizer")
    tokenizer_2 = clip_tokenizer(folder / "tokenizer_2")
    tokenizer_3 = t5_tokenizer(folder / "tokenizer_3")
    transformer = SD3Transformer2DModel(
        sample_size=32,  # x the VAE factor 2: a native size of 64
        patch_size=2,
        # SD 3's inpaint pipeline insists on the real model's 16 latent channels.
        in_channels=16,
        out_channels=16,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        # The two CLIP encoders' states side by side are padded to T5's width.
        joint_attention_dim=T5_WIDTH,
        pooled_projection_dim=HIDDEN + HIDDEN_G,
        pos_embed_max_size=32,
    )
    pipe = StableDiffusion3Pipeline(
        transformer=transformer,
        vae=tiny_vae(latent_channels=16, flow=True),
        text_encoder=clip_encoder(tokenizer, with_projection=True),
        text_encoder_2=clip_encoder(tokenizer_2, with_projection=True, width=HIDDEN_G),
        text_encoder_3=t5_encoder(tokenizer_3),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        tokenizer_3=tokenizer_3,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )
    pipe.save_pretrained(folder)
    return folder
