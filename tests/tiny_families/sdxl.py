"""A tiny SDXL pipeline: two CLIP text encoders (the second with a projection, for
the pooled embedding) and a UNet with SDXL's size/crop micro-conditioning."""

from __future__ import annotations

from pathlib import Path

import torch
from tiny_model import clip_state, ldm_unet_state, ldm_vae_state, write_single_file

from .text import HIDDEN, HIDDEN_G, clip_encoder, clip_tokenizer, tiny_vae

TIME_EMBED = 8


def build_tiny_sdxl(folder: Path, seed: int = 0) -> Path:
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    torch.manual_seed(seed)
    tokenizer = clip_tokenizer(folder / "tokenizer")
    tokenizer_2 = clip_tokenizer(folder / "tokenizer_2")
    unet = UNet2DConditionModel(
        sample_size=32,  # x the VAE factor 2: a native size of 64
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED,
        # Six size/crop numbers, each embedded, plus the pooled text embedding.
        projection_class_embeddings_input_dim=6 * TIME_EMBED + HIDDEN_G,
        cross_attention_dim=HIDDEN + HIDDEN_G,  # both encoders' hidden states side by side
        norm_num_groups=32,
    )
    pipe = StableDiffusionXLPipeline(
        unet=unet,
        vae=tiny_vae(latent_channels=4, flow=False),
        text_encoder=clip_encoder(tokenizer, with_projection=False),
        text_encoder_2=clip_encoder(tokenizer_2, with_projection=True, width=HIDDEN_G),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        scheduler=EulerDiscreteScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            num_train_timesteps=1000,
            steps_offset=1,
            timestep_spacing="leading",
        ),
    )
    pipe.save_pretrained(folder)
    return folder


def _open_clip_state(text_encoder: object, prefix: str) -> dict[str, torch.Tensor]:
    """SDXL's second encoder as the original checkpoints store it: OpenCLIP names,
    q/k/v fused into one `in_proj`, the projection transposed."""
    source = {
        key.removeprefix("text_model."): value
        for key, value in text_encoder.state_dict().items()  # type: ignore[attr-defined]
    }
    state = {
        prefix + "positional_embedding": source["embeddings.position_embedding.weight"],
        prefix + "token_embedding.weight": source["embeddings.token_embedding.weight"],
        prefix + "ln_final.weight": source["final_layer_norm.weight"],
        prefix + "ln_final.bias": source["final_layer_norm.bias"],
        prefix + "text_projection": source["text_projection.weight"].T,
    }
    layer = 0
    while f"encoder.layers.{layer}.layer_norm1.weight" in source:
        old = f"encoder.layers.{layer}."
        new = f"{prefix}transformer.resblocks.{layer}."
        for kind in ("weight", "bias"):
            state[new + f"ln_1.{kind}"] = source[old + f"layer_norm1.{kind}"]
            state[new + f"ln_2.{kind}"] = source[old + f"layer_norm2.{kind}"]
            state[new + f"mlp.c_fc.{kind}"] = source[old + f"mlp.fc1.{kind}"]
            state[new + f"mlp.c_proj.{kind}"] = source[old + f"mlp.fc2.{kind}"]
            state[new + f"attn.out_proj.{kind}"] = source[old + f"self_attn.out_proj.{kind}"]
            state[new + f"attn.in_proj_{kind}"] = torch.cat(
                [source[old + f"self_attn.{p}_proj.{kind}"] for p in ("q", "k", "v")]
            )
        layer += 1
    return state


def save_sdxl_single_file(model_dir: Path, path: Path) -> Path:
    """The tiny SDXL model as one original-layout checkpoint (`conditioner.embedders.*`)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    vae = AutoencoderKL.from_pretrained(model_dir / "vae")
    text_encoder = CLIPTextModel.from_pretrained(model_dir / "text_encoder")
    text_encoder_2 = CLIPTextModelWithProjection.from_pretrained(model_dir / "text_encoder_2")
    state = ldm_unet_state(unet) | ldm_vae_state(vae)
    state |= clip_state(text_encoder, "conditioner.embedders.0.transformer.")
    state |= _open_clip_state(text_encoder_2, "conditioner.embedders.1.model.")
    components = ["unet", "vae", "text_encoder", "text_encoder_2"]
    return write_single_file(state, model_dir, path, components)
