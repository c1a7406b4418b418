"""Build a tiny random-weight Stable Diffusion pipeline on disk, for tests and benches.

Nothing is downloaded: the tokenizer's vocabulary and merges are written here, and
every module is built from a small config with random weights. The folder layout is
the one `save_pretrained` writes, so it loads through the same code path a real
model does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

# The letters and a few words are enough for CLIP's byte-level BPE to encode any
# ASCII prompt; unknown pieces fall back to <|endoftext|>.
_WORDS = ["a", "cat", "dog", "red", "blue", "hat", "fox", "lighthouse", "dusk", "portrait"]


def write_clip_tokenizer(folder: Path) -> None:
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
    write_clip_tokenizer(folder / "tokenizer")
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
        sample_size=32,  # x the VAE factor 2: a native size of 64
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


def _unet_to_ldm_names(config: dict) -> list[tuple[str, str]]:
    """(diffusers prefix, original LDM prefix) pairs for an SD-1.x-shaped UNet.

    The inverse of the map diffusers' single-file loader applies, derived from the
    block layout so it fits the tiny UNet as well as a real one.
    """
    per_block = config["layers_per_block"]
    blocks = len(config["block_out_channels"])
    pairs = [
        ("time_embedding.linear_1.", "time_embed.0."),
        ("time_embedding.linear_2.", "time_embed.2."),
        ("conv_in.", "input_blocks.0.0."),
        ("conv_norm_out.", "out.0."),
        ("conv_out.", "out.2."),
        ("mid_block.attentions.0.", "middle_block.1."),
        ("mid_block.resnets.0.", "middle_block.0."),
        ("mid_block.resnets.1.", "middle_block.2."),
    ]
    for i in range(blocks):
        for j in range(per_block):
            ldm = (per_block + 1) * i + j + 1
            pairs.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{ldm}.0."))
            pairs.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{ldm}.1."))
        if i < blocks - 1:
            ldm = (per_block + 1) * (i + 1)
            pairs.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{ldm}.0.op."))
        has_attention = config["up_block_types"][i].startswith("CrossAttn")
        for j in range(per_block + 1):
            ldm = (per_block + 1) * i + j
            pairs.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{ldm}.0."))
            pairs.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{ldm}.1."))
        if i < blocks - 1:
            ldm = (per_block + 1) * i + per_block
            slot = 2 if has_attention else 1
            pairs.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{ldm}.{slot}."))
    return pairs


_RESNET_PARTS = [
    ("norm1.", "in_layers.0."),
    ("conv1.", "in_layers.2."),
    ("norm2.", "out_layers.0."),
    ("conv2.", "out_layers.3."),
    ("time_emb_proj.", "emb_layers.1."),
    ("conv_shortcut.", "skip_connection."),
]


def _vae_to_ldm_names(config: dict) -> list[tuple[str, str]]:
    blocks = len(config["block_out_channels"])
    per_block = config["layers_per_block"]
    pairs = []
    for side in ("encoder", "decoder"):
        pairs += [(f"{side}.mid_block.resnets.{i}.", f"{side}.mid.block_{i + 1}.") for i in (0, 1)]
        pairs.append((f"{side}.mid_block.attentions.0.", f"{side}.mid.attn_1."))
        pairs.append((f"{side}.conv_norm_out.", f"{side}.norm_out."))
    for i in range(blocks):
        up = blocks - 1 - i
        for j in range(per_block):
            pairs.append((f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}."))
        for j in range(per_block + 1):
            pairs.append((f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{up}.block.{j}."))
        if i < blocks - 1:
            pairs.append(
                (f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample.")
            )
            pairs.append((f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{up}.upsample."))
    return pairs


_VAE_ATTENTION_PARTS = [
    ("group_norm.", "norm."),
    ("to_q.", "q."),
    ("to_k.", "k."),
    ("to_v.", "v."),
    ("to_out.0.", "proj_out."),
]


def _rename_prefix(key: str, pairs: list[tuple[str, str]]) -> tuple[str, str]:
    """(renamed prefix, rest of the key) for the pair whose diffusers prefix matches."""
    for new, old in pairs:
        if key.startswith(new):
            return old, key[len(new) :]
    return "", key


def _rename_part(rest: str, parts: list[tuple[str, str]]) -> str:
    for new, old in parts:
        if rest.startswith(new):
            return old + rest[len(new) :]
    return rest


def ldm_unet_state(unet: Any) -> dict[str, torch.Tensor]:
    """A diffusers UNet's weights under the original LDM names (`model.diffusion_model.*`)."""
    state = {}
    unet_pairs = _unet_to_ldm_names(dict(unet.config))
    # SDXL's micro-conditioning embedding (`label_emb` in the original).
    unet_pairs += [
        ("add_embedding.linear_1.", "label_emb.0.0."),
        ("add_embedding.linear_2.", "label_emb.0.2."),
    ]
    for key, value in unet.state_dict().items():
        prefix, rest = _rename_prefix(key, unet_pairs)
        if ".resnets." in key:
            rest = _rename_part(rest, _RESNET_PARTS)
        state["model.diffusion_model." + prefix + rest] = value
    return state


def ldm_vae_state(vae: Any) -> dict[str, torch.Tensor]:
    """A diffusers VAE's weights under the original names (`first_stage_model.*`)."""
    state = {}
    vae_pairs = _vae_to_ldm_names(dict(vae.config))
    for key, value in vae.state_dict().items():
        prefix, rest = _rename_prefix(key, vae_pairs)
        rest = rest.replace("conv_shortcut.", "nin_shortcut.")
        if prefix.endswith("attn_1."):
            rest = _rename_part(rest, _VAE_ATTENTION_PARTS)
            if value.ndim == 2:  # the original stores these as 1x1 convolutions
                value = value[:, :, None, None]
        state["first_stage_model." + prefix + rest] = value
    return state


def clip_state(text_encoder: Any, prefix: str) -> dict[str, torch.Tensor]:
    """A transformers CLIP text model's weights, nested under `prefix` + `text_model.`."""
    state = {}
    for key, value in text_encoder.state_dict().items():
        # Original checkpoints nest CLIP under `text_model.`; newer transformers
        # releases may leave that level out of the state dict.
        name = key if key.startswith("text_model.") else "text_model." + key
        state[prefix + name] = value
    return state


def write_single_file(
    state: dict[str, torch.Tensor], model_dir: Path, path: Path, components: list[str]
) -> Path:
    """Save `state` as `path`, with the model's configs and tokenizers (no weights)
    beside it, the way a hub repo keeps a `.safetensors` next to its `model_index.json`."""
    import shutil

    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in state.items()}, str(path))
    shutil.copy(model_dir / "model_index.json", path.parent / "model_index.json")
    for component in components:
        (path.parent / component).mkdir(exist_ok=True)
        shutil.copy(model_dir / component / "config.json", path.parent / component)
    for folder in model_dir.iterdir():
        if folder.name.startswith(("tokenizer", "scheduler")):
            shutil.copytree(folder, path.parent / folder.name, dirs_exist_ok=True)
    return path


def save_single_file(model_dir: Path, path: Path) -> Path:
    """Write the diffusers model in `model_dir` as one original-layout checkpoint.

    The file uses the key names of the original Stable Diffusion checkpoints
    (`model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.transformer.*`),
    which is what `from_single_file` converts from; it loads offline because the
    configs lie beside it.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    vae = AutoencoderKL.from_pretrained(model_dir / "vae")
    text_encoder = CLIPTextModel.from_pretrained(model_dir / "text_encoder")
    state = ldm_unet_state(unet) | ldm_vae_state(vae)
    state |= clip_state(text_encoder, "cond_stage_model.transformer.")
    return write_single_file(state, model_dir, path, ["unet", "vae", "text_encoder"])


def build_tiny_safety_checker(folder: Path, *, flag_everything: bool, seed: int = 0) -> Path:
    """Write a tiny diffusers StableDiffusionSafetyChecker and its image processor.

    The classifier code is diffusers' own; only its weights are controlled. A picture
    is flagged when its similarity to a concept exceeds that concept's threshold, and
    cosine similarity lies in [-1, 1], so thresholds of -2 flag every picture and
    thresholds of 2 flag none.
    """
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    torch.manual_seed(seed)
    small = {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4}
    config = CLIPConfig(
        text_config={
            **small,
            "num_hidden_layers": 1,
            "vocab_size": 100,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config={**small, "num_hidden_layers": 2, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    checker = StableDiffusionSafetyChecker(config)
    threshold = -2.0 if flag_everything else 2.0
    with torch.no_grad():
        checker.concept_embeds.normal_()
        checker.special_care_embeds.normal_()
        checker.concept_embeds_weights.fill_(threshold)
        checker.special_care_embeds_weights.fill_(threshold)
    checker.save_pretrained(folder)
    CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(folder)
    return folder
