"""A1111 prompt weighting and prompts longer than CLIP's 77 tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import CLIPTextModel, CLIPTokenizer

from engine.prompts import (
    LoraTag,
    PromptEncoder,
    WeightedText,
    parse_weighted_prompt,
    plain_text,
    split_lora_tags,
)


def pieces(prompt: str) -> list[tuple[str, float]]:
    return [(piece.text, round(piece.weight, 4)) for piece in parse_weighted_prompt(prompt)]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a cat", [("a cat", 1.0)]),
        ("(cat)", [("cat", 1.1)]),
        ("((cat))", [("cat", 1.21)]),
        ("[cat]", [("cat", 0.9091)]),
        ("[[cat]]", [("cat", 0.8264)]),
        ("a (cat:1.3) in a hat", [("a ", 1.0), ("cat", 1.3), (" in a hat", 1.0)]),
        ("(cat: 0.5 )", [("cat", 0.5)]),
        ("((a cat:1.2))", [("a cat", 1.32)]),
        ("a (red [fox]:1.5)", [("a ", 1.0), ("red ", 1.5), ("fox", 1.3636)]),
        (r"a \(cat\) \[x\]", [("a (cat) [x]", 1.0)]),
        (r"back\\slash", [("back\\slash", 1.0)]),
        ("time: 5pm", [("time: 5pm", 1.0)]),
        ("(unclosed", [("unclosed", 1.1)]),
        ("closed) too]", [("closed) too]", 1.0)]),
        ("(a:.)", [("a", 1.1)]),
        ("(cat)(dog)", [("catdog", 1.1)]),
        ("", [("", 1.0)]),
    ],
)
def test_a1111_syntax_becomes_weighted_pieces(prompt: str, expected: list) -> None:
    assert pieces(prompt) == expected


def test_pieces_are_plain_text_for_the_encoder() -> None:
    # Characters that mean something in compel's own syntax stay plain text here.
    assert parse_weighted_prompt('a "quoted" cat+, dog-') == [
        WeightedText('a "quoted" cat+, dog-', 1.0)
    ]


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path) -> PromptEncoder:
    tokenizer = CLIPTokenizer.from_pretrained(tiny_model_dir / "tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(tiny_model_dir / "text_encoder")
    return PromptEncoder(tokenizer, text_encoder)


def test_weights_change_the_conditioning(encoder: PromptEncoder) -> None:
    plain, up, down, same = (
        encoder.encode(prompt)
        for prompt in ["a red fox", "a (red:1.5) fox", "a [red] fox", "a (red:1.0) fox"]
    )
    assert plain.shape == up.shape == (1, 77, 32)
    assert not torch.allclose(plain, up)
    assert not torch.allclose(plain, down)
    assert not torch.allclose(up, down)
    assert torch.allclose(plain, same)


def test_long_prompts_are_not_truncated(encoder: PromptEncoder) -> None:
    # The tiny vocabulary spells most words letter by letter: ~100 tokens.
    long_prompt = "a red fox in a blue hat at dusk, " * 4
    short = encoder.encode("a red fox")
    long = encoder.encode(long_prompt)
    changed_end = encoder.encode(long_prompt + "portrait")
    assert short.shape[1] == 77
    assert long.shape[1] == 154
    # The words past token 77 reach the conditioning instead of being cut off.
    assert torch.allclose(long[:, :77], changed_end[:, :77])
    assert not torch.allclose(long[:, 77:], changed_end[:, 77:])


def test_prompts_are_padded_to_the_same_length(encoder: PromptEncoder) -> None:
    positive, negative = encoder.pad(
        [encoder.encode("a red fox at dusk, " * 8), encoder.encode("blurry")]
    )
    assert positive.shape == negative.shape
    assert positive.shape[1] == 154
    # Padding adds empty-prompt chunks after the prompt's own, which stay as they were.
    assert torch.equal(negative[:, :77], encoder.encode("blurry"))


@pytest.mark.parametrize(
    ("prompt", "plain"),
    [
        ("nu()de", "nude"),
        ("nu[]de", "nude"),
        ("(nud:1)(e:1)", "nude"),
        ("nak()ed wo()man", "naked woman"),
        ("((a cat:1.2)) in [a hat]", "a cat in a hat"),
        (r"a \(cat\)", "a (cat)"),
        ("<lora:detail:0.8>nu<lora:x>de", "nude"),
    ],
)
def test_plain_text_is_what_the_encoder_reads(prompt: str, plain: str) -> None:
    assert plain_text(prompt) == plain


def test_lora_tags_are_split_out_with_their_weights() -> None:
    text, tags = split_lora_tags("a fox <lora:detail:0.8>, <LORA:Film Grain> <lora:detail:0.5>")
    assert text == "a fox ,  "
    # Named twice: the last weight counts; no weight: 1.
    assert tags == [LoraTag("Film Grain", 1.0), LoraTag("detail", 0.5)]
    assert split_lora_tags("no tags (here:1.2)") == ("no tags (here:1.2)", [])
