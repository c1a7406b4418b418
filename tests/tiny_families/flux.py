"""A tiny Flux.1 pipeline: a double/single-stream transformer, CLIP (pooled) and T5."""

from __future__ import annotations

from pathlib import Path

import torch

from .text import (
    HIDDEN,
    T5_WIDTH,
    clip_encoder,
    clip_tokenizer,
    t5_encoder,
    t5_tokenizer,
    tiny_vae,
)


def build_tiny_flux(folder: Path, seed: int = 0, *, guidance: bool = False) -> Path:
    """`guidance=False` is schnell-shaped (no guidance embedding); True is dev-shaped."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    torch.manual_seed(seed)
    tokenizer = clip_tokenizer(folder / "tokenizer")
    tokenizer_2 = t5_tokenizer(folder / "tokenizer_2")
    latent_channels = 2
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4 * latent_channels,  # latents are packed 2x2
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=T5_WIDTH,
        pooled_projection_dim=HIDDEN,
        guidance_embeds=guidance,
        axes_dims_rope=(4, 4, 8),
    )
    pipe = FluxPipeline(
        transformer=transformer,
        vae=tiny_vae(latent_channels=latent_channels, flow=True),
        text_encoder=clip_encoder(tokenizer, with_projection=False),
        text_encoder_2=t5_encoder(tokenizer_2),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        scheduler=FlowMatchEulerDiscreteScheduler(
            shift=3.0,
            use_dynamic_shifting=True,
            base_shift=0.5,
            max_shift=1.15,
            base_image_seq_len=256,
            max_image_seq_len=4096,
        ),
    )
    pipe.save_pretrained(folder)
    return folder
