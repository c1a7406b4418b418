"""Prompts: A1111 weighting, LoRA tags, and prompts longer than CLIP's 77 tokens.

`parse_weighted_prompt` reads A1111's attention syntax into (text, weight) pieces, and
`plain_text` joins the pieces back without the syntax: what the encoder reads, and what
the prompt filter must check. `split_lora_tags` takes `<lora:NAME:0.8>` tags out.
`PromptEncoder` hands the pieces to compel as its parsed prompt form. We skip
compel's own string syntax on purpose: it gives meaning to characters people use as
plain text (`cat+` is an upweight, quotes vanish, `\\,` keeps its backslash), so
escaping an A1111 prompt into it would lose or change words.

This module imports torch and compel only inside `PromptEncoder`: the bot uses the
parsers without them.
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
# A1111's extra-network tag, as `<lora:NAME>` or `<lora:NAME:WEIGHT>`.
_LORA_TAG = re.compile(r"<lora:([^:<>]+?)(?::\s*([+-]?[\d.]+)\s*)?>", re.IGNORECASE)


@dataclass(frozen=True)
class WeightedText:
    text: str
    weight: float


@dataclass(frozen=True)
class LoraTag:
    name: str
    weight: float = 1.0


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


def split_lora_tags(prompt: str) -> tuple[str, list[LoraTag]]:
    """The prompt without its `<lora:NAME:WEIGHT>` tags, and the tags in order.

    A LoRA named twice counts once, with its last weight; a weight that is not a
    number counts as 1.
    """
    found: dict[str, float] = {}
    for match in _LORA_TAG.finditer(prompt):
        name = match[1].strip()
        try:
            weight = float(match[2]) if match[2] is not None else 1.0
        except ValueError:
            weight = 1.0
        found.pop(name, None)
        found[name] = weight
    text = _LORA_TAG.sub("", prompt)
    return text, [LoraTag(name, weight) for name, weight in found.items()]


def plain_text(prompt: str) -> str:
    """The words the encoder reads: LoRA tags and weighting syntax taken out, so
    `nu()de`, `(nud:1)(e:1)` and `<lora:x>nude` all read `nude`."""
    text, _ = split_lora_tags(prompt)
    return "".join(piece.text for piece in parse_weighted_prompt(text))


class PromptEncoder:
    """One text encoder through compel: A1111 weights, and no truncation when asked.

    `embeddings` names compel's ReturnedEmbeddingsType (which hidden state a prompt
    becomes: the last, normalised, for SD 1.x; the penultimate for clip skip 2 and
    for SDXL; the pooled output for Flux's CLIP).
    """

    def __init__(
        self,
        tokenizer: Any,
        text_encoder: Any,
        *,
        embeddings: str = "LAST_HIDDEN_STATES_NORMALIZED",
        truncate: bool = False,
    ) -> None:
        from compel import Compel
        from compel.embeddings_provider import ReturnedEmbeddingsType

        self._compel = Compel(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            truncate_long_prompts=truncate,
            returned_embeddings_type=ReturnedEmbeddingsType[embeddings],
            # compel's per-token weights default to float32; keep fp16 models in fp16.
            dtype_for_device_getter=lambda _device: text_encoder.dtype,
        )
        self._empty: torch.Tensor | None = None

    def encode(self, prompt: str) -> torch.Tensor:
        """The conditioning of one prompt (batch of one), with its A1111 weights.

        Without truncation, a prompt over 77 tokens is encoded in 77-token chunks and
        concatenated, so a long prompt gives a longer tensor instead of losing its end.
        """
        import torch
        from compel.prompt_parser import FlattenedPrompt, Fragment

        flat = FlattenedPrompt(
            [Fragment(piece.text, piece.weight) for piece in parse_weighted_prompt(prompt)]
        )
        with torch.no_grad():
            (conditioning, _tokens), _options = (
                self._compel.build_conditioning_tensor_for_prompt_object(flat)
            )
        return conditioning

    def pooled(self, prompt: str) -> torch.Tensor:
        """The encoder's pooled output for the prompt's plain text (77 tokens at most)."""
        import torch

        with torch.no_grad():
            return self._compel.conditioning_provider.get_pooled_embeddings(
                [plain_text(prompt)], device=self._compel.device
            )

    def pad(self, tensors: list[torch.Tensor], length: int = 0) -> list[torch.Tensor]:
        """The tensors padded with empty-prompt chunks to the longest one's length (or
        to `length` tokens, if that is longer)."""
        import torch

        target = max([length, *(tensor.shape[1] for tensor in tensors)])
        if self._empty is None:
            self._empty = self.encode("")
        padded = []
        for tensor in tensors:
            missing = (target - tensor.shape[1]) // self._empty.shape[1]
            if missing > 0:
                tensor = torch.cat([tensor, self._empty.repeat(1, missing, 1)], dim=1)
            padded.append(tensor)
        return padded


class EncodingCache:
    """The last few prompts' encodings for one loaded model (so per family, encoder
    and clip skip), keyed by the texts and the LoRAs that were on: a LoRA may change
    the text encoders. Queued jobs, rerolls and the pictures of one request repeat
    the same prompt; each would otherwise run the text encoders again."""

    def __init__(self, size: int = 32) -> None:
        from collections import OrderedDict

        self._size = size
        self._entries: OrderedDict[tuple[object, ...], dict[str, torch.Tensor]] = OrderedDict()

    def encode(
        self, encoder: Any, prompt: str, negative: str, loras: tuple[object, ...] = ()
    ) -> dict[str, torch.Tensor]:
        key = (prompt, negative, loras)
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            return found
        encoded = encoder.encode(prompt, negative)
        self._entries[key] = encoded
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return encoded

    def clear(self) -> None:
        self._entries.clear()
