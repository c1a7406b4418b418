"""Prompt encodings are reused per loaded model: a repeated prompt does not run the
text encoder again, and the picture is the same as with a fresh encoding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.prompts import EncodingCache
from tests.engine.helpers import load_engine, make_spec, pixels


def test_a_repeated_prompt_is_encoded_once_and_paints_the_same(tiny_model_dir: Path) -> None:
    engine = load_engine("tiny", models={"tiny": str(tiny_model_dir)})
    calls: list[int] = []
    encoder = engine.pipeline.text_encoder
    hook = encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        first = engine.generate([make_spec(prompt="a blue owl", negative_prompt="fog", seed=3)])
        encoded = len(calls)
        (again,) = engine.generate([make_spec(prompt="a blue owl", negative_prompt="fog", seed=3)])
        engine.generate(
            [make_spec(prompt="a blue owl", negative_prompt="fog", seed=s) for s in range(3)]
        )
        assert len(calls) == encoded  # four more pictures, no text encoder run
        engine.generate([make_spec(prompt="a blue owl", negative_prompt="rain", seed=3)])
        assert len(calls) > encoded  # another negative prompt is encoded
    finally:
        hook.remove()
    assert (pixels(again.png) == pixels(first[0].png)).all()


class CountingEncoder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def encode(self, prompt: str, negative: str) -> dict[str, Any]:
        self.calls.append((prompt, negative))
        return {"prompt": prompt}


def test_the_cache_keeps_only_the_most_recently_used_prompts() -> None:
    cache = EncodingCache(size=2)
    encoder = CountingEncoder()
    for prompt in ("a", "b", "a", "c", "a", "b"):
        cache.encode(encoder, prompt, "")
    # "b" was dropped when "c" came in ("a" had been used since); "a" stayed.
    assert [prompt for prompt, _ in encoder.calls] == ["a", "b", "c", "b"]
    cache.encode(encoder, "a", "", loras=(("ink", "abc", 0.5),))
    assert encoder.calls[-1] == ("a", "")  # the same text with a LoRA on: encoded again
