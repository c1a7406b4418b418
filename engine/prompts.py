"""Prompt weighting in AUTOMATIC1111 syntax, and prompts longer than CLIP's 77 tokens.

`parse_weighted_prompt` reads A1111's attention syntax into (text, weight) pieces;
`PromptEncoder` hands those pieces to compel as its parsed prompt form. We skip
compel's own string syntax on purpose: it gives meaning to characters people use as
plain text (`cat+` is an upweight, quotes vanish, `\\,` keeps its backslash), so
escaping an A1111 prompt into it would lose or change words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# A1111's multipliers: (x) is 1.1 times stronger, [x] 1.1 times weaker.
ROUND_BRACKET_MULTIPLIER = 1.1
SQUARE_BRACKET_MULTIPLIER = 1 / 1.1

# The same tokens A1111's `parse_prompt_attention` recognises, in the same order.
_ATTENTION_TOKEN = re.compile(
    r"""
    \\\(|\\\)|\\\[|\\\]|\\\\|\\|   # escapes: \( \) \[ \] \\ and a lone backslash
    \(|\[|                         # openers
    :\s*([+-]?[.\d]+)\s*\)|        # explicit weight closing a round bracket: (text:1.3)
    \)|\]|                         # closers
    [^\\()\[\]:]+|                 # plain text
    :                              # a colon that is not a weight
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class WeightedText:
    text: str
    weight: float


def parse_weighted_prompt(prompt: str) -> list[WeightedText]:
    """Split an A1111 prompt into pieces of plain text, each with its weight.

    `(a)` -> 1.1, `((a))` -> 1.21, `[a]` -> 1/1.1, `(a:1.3)` -> 1.3, `\\(` is a
    literal bracket. Unclosed brackets apply to the end of the prompt, as in A1111.
    Neighbouring pieces of equal weight are merged.
    """
    pieces: list[list[Any]] = []  # [text, weight], mutable while brackets close
    round_starts: list[int] = []
    square_starts: list[int] = []

    def multiply_from(start: int, multiplier: float) -> None:
        for piece in pieces[start:]:
            piece[1] *= multiplier

    for match in _ATTENTION_TOKEN.finditer(prompt):
        token = match.group(0)
        explicit_weight = match.group(1)
        if token.startswith("\\") and len(token) == 2:
            pieces.append([token[1], 1.0])
        elif token == "(":
            round_starts.append(len(pieces))
        elif token == "[":
            square_starts.append(len(pieces))
        elif explicit_weight is not None and round_starts:
            multiply_from(round_starts.pop(), _to_weight(explicit_weight))
        elif token == ")" and round_starts:
            multiply_from(round_starts.pop(), ROUND_BRACKET_MULTIPLIER)
        elif token == "]" and square_starts:
            multiply_from(square_starts.pop(), SQUARE_BRACKET_MULTIPLIER)
        else:
            pieces.append([token, 1.0])

    for start in round_starts:
        multiply_from(start, ROUND_BRACKET_MULTIPLIER)
    for start in square_starts:
        multiply_from(start, SQUARE_BRACKET_MULTIPLIER)

    merged: list[WeightedText] = []
    for text, weight in pieces:
        if merged and merged[-1].weight == weight:
            merged[-1] = WeightedText(merged[-1].text + text, weight)
        else:
            merged.append(WeightedText(text, weight))
    return merged or [WeightedText("", 1.0)]


def _to_weight(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        # "(a:.)" or "(a:1.2.3)": A1111 would crash; treat it as a plain bracket.
        return ROUND_BRACKET_MULTIPLIER


class PromptEncoder:
    """Turns prompts into CLIP conditioning with weights and without truncation."""

    def __init__(self, tokenizer: Any, text_encoder: Any) -> None:
        from compel import Compel

        self._compel = Compel(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            truncate_long_prompts=False,
            # compel's per-token weights default to float32; keep fp16 models in fp16.
            dtype_for_device_getter=lambda _device: text_encoder.dtype,
        )

    def encode(self, prompts: list[str]) -> list[torch.Tensor]:
        """One conditioning tensor per prompt, all padded to the same token length.

        Prompts over 77 tokens are encoded in 77-token chunks and concatenated, so a
        long prompt gives a longer tensor instead of losing its end.
        """
        import torch
        from compel.prompt_parser import FlattenedPrompt, Fragment

        tensors = []
        with torch.no_grad():
            for prompt in prompts:
                flat = FlattenedPrompt(
                    [Fragment(piece.text, piece.weight) for piece in parse_weighted_prompt(prompt)]
                )
                (conditioning, _tokens), _options = (
                    self._compel.build_conditioning_tensor_for_prompt_object(flat)
                )
                tensors.append(conditioning)
            return self._compel.pad_conditioning_tensors_to_same_length(tensors)
