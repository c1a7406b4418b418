"""Small tokenizers and text encoders the tiny pipelines share: CLIP and T5."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from tiny_model import write_clip_tokenizer

HIDDEN = 32  # the tiny CLIP-L encoder's width
# CLIP-G's width: it must differ from CLIP-L's, as it does in real checkpoints, or the
# single-file loader cannot tell the two apart.
HIDDEN_G = 48
T5_WIDTH = 64


def clip_tokenizer(folder: Path) -> Any:
    from transformers import CLIPTokenizer

    write_clip_tokenizer(folder)
    return CLIPTokenizer.from_pretrained(folder)


def clip_encoder(
    tokenizer: Any, *, with_projection: bool, width: int = HIDDEN, layers: int = 2
) -> Any:
    """CLIP text model; the projection variant gives SDXL's and SD3's pooled output."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=width,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=layers,
        max_position_embeddings=77,
        projection_dim=width,  # as real SDXL/SD3 encoders: projection = width
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModelWithProjection(config) if with_projection else CLIPTextModel(config)


def t5_tokenizer(folder: Path) -> Any:
    """A SentencePiece-style (Unigram + Metaspace) vocabulary of letters and a few words,
    wrapped as T5's fast tokenizer: any lower-case ASCII prompt encodes."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(c, -3.0) for c in string.ascii_lowercase + string.digits + ",.!?()[]:-'\""]
    pieces += [("▁" + w, -1.0) for w in ("a", "cat", "dog", "red", "blue", "hat", "fox")]
    backend = Tokenizer(models.Unigram(pieces, unk_id=2))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    tokenizer = T5TokenizerFast(
        tokenizer_object=backend,
        extra_ids=0,
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=77,  # real T5s read 256-512 tokens; short is quicker here
    )
    tokenizer.save_pretrained(folder)
    return T5TokenizerFast.from_pretrained(folder)


def t5_encoder(tokenizer: Any, width: int = T5_WIDTH) -> Any:
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=width,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
        )
    )


def tiny_vae(*, latent_channels: int, flow: bool) -> Any:
    """Two down blocks: a VAE factor of 2, never 8, so code that assumes 8 fails."""
    from diffusers import AutoencoderKL

    options: dict[str, Any] = {}
    if flow:
        # SD3 and Flux VAEs: no quant convs, a shift as well as a scale.
        options = {
            "use_quant_conv": False,
            "use_post_quant_conv": False,
            "shift_factor": 0.0609,
            "scaling_factor": 1.5035,
        }
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 8),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=4,
        sample_size=32,
        **options,
    )
