"""text2img through the real diffusers pipeline on the tiny model: samplers, seeds,
sizes, batching, progress, cancel, and the PNG that comes out."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.memory import OUT_OF_MEMORY_MESSAGE
from engine.pipelines import Engine
from engine.samplers import SAMPLER_NAMES
from engine.types import EngineError, EngineSettings, GenerationCancelled
from tests.engine.helpers import load_engine, make_spec, pixels


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> Engine:
    return load_engine("tiny", models={"tiny": str(tiny_model_dir)})


@pytest.mark.parametrize("sampler", SAMPLER_NAMES)
def test_every_sampler_makes_a_picture(engine: Engine, sampler: str) -> None:
    events: list[tuple[int, int]] = []
    (image,) = engine.generate([make_spec(sampler=sampler)], on_step=lambda *e: events.append(e))
    assert (image.width, image.height) == (64, 64)
    assert pixels(image.png).shape == (64, 64, 3)
    assert f"Sampler: {sampler}," in image.parameters
    total = events[-1][1]
    assert events == [(step, total) for step in range(1, total + 1)]


@pytest.mark.parametrize(
    ("first", "second"), [("Euler", "Euler a"), ("DPM++ 2M", "DPM++ 2M Karras")]
)
def test_samplers_give_different_pictures(engine: Engine, first: str, second: str) -> None:
    a, b = (engine.generate([make_spec(sampler=s, steps=4)])[0] for s in (first, second))
    assert not np.array_equal(pixels(a.png), pixels(b.png))


def test_sampler_names_match_loosely_and_are_written_canonically(engine: Engine) -> None:
    (image,) = engine.generate([make_spec(sampler="dpm++ 2m  KARRAS")])
    assert "Sampler: DPM++ 2M Karras," in image.parameters


def test_unknown_sampler_is_refused_with_the_valid_names(engine: Engine) -> None:
    with pytest.raises(EngineError, match=r"unknown sampler 'Euler b'.*Euler a, Euler"):
        engine.generate([make_spec(sampler="Euler b")])


def test_same_seed_gives_same_pixels_and_other_seeds_differ(engine: Engine) -> None:
    first = engine.generate([make_spec(seed=42)])[0]
    again = engine.generate([make_spec(seed=42)])[0]
    other = engine.generate([make_spec(seed=43)])[0]
    assert np.array_equal(pixels(first.png), pixels(again.png))
    assert np.abs(pixels(first.png) - pixels(other.png)).mean() > 5


def test_non_square_size(engine: Engine) -> None:
    (image,) = engine.generate([make_spec(width=96, height=64)])
    assert (image.width, image.height) == (96, 64)
    assert pixels(image.png).shape == (64, 96, 3)
    assert "Size: 96x64," in image.parameters


def test_odd_sizes_are_rounded_to_what_the_model_accepts(engine: Engine) -> None:
    # Tiny model: VAE x2, UNet one downsampling -> 4; diffusers also needs 8.
    (image,) = engine.generate([make_spec(width=70, height=57)])
    assert (image.width, image.height) == (72, 56)
    assert pixels(image.png).shape == (56, 72, 3)
    assert "Size: 72x56," in image.parameters


def test_batch_of_three_differs_and_each_seed_reproduces_alone(engine: Engine) -> None:
    specs = [make_spec(seed=seed) for seed in (11, 12, 13)]
    batch = engine.generate(specs)
    assert [image.seed for image in batch] == [11, 12, 13]
    arrays = [pixels(image.png) for image in batch]
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.abs(arrays[i] - arrays[j]).mean() > 5
    for spec, array in zip(specs, arrays, strict=True):
        (alone,) = engine.generate([spec])
        # Batched matrix maths may round differently in the last bit.
        assert np.abs(pixels(alone.png) - array).max() <= 2


def test_mixed_batch_keys_come_back_in_request_order(engine: Engine) -> None:
    specs = [
        make_spec(seed=1, width=64),
        make_spec(seed=2, width=96),
        make_spec(seed=3, width=64),
    ]
    images = engine.generate(specs)
    assert [(image.seed, image.width) for image in images] == [(1, 64), (2, 96), (3, 64)]
    (third_alone,) = engine.generate([specs[2]])
    assert np.abs(pixels(third_alone.png) - pixels(images[2].png)).max() <= 2


def test_progress_counts_every_step_across_batches_in_order(engine: Engine) -> None:
    events: list[tuple[int, int]] = []
    engine.generate(
        [make_spec(steps=3), make_spec(steps=2, sampler="Heun")],
        on_step=lambda *e: events.append(e),
    )
    # 3 Euler a steps, then Heun's 2 steps make 3 model passes (2 * 2 - 1).
    assert events == [(step, 6) for step in range(1, 7)]


def test_cancel_stops_within_a_step_and_the_engine_stays_usable(engine: Engine) -> None:
    events: list[tuple[int, int]] = []
    with pytest.raises(GenerationCancelled):
        engine.generate(
            [make_spec(steps=5)],
            on_step=lambda *e: events.append(e),
            should_cancel=lambda: len(events) >= 1,
        )
    assert events == [(1, 5)]
    (image,) = engine.generate([make_spec()])
    assert (image.width, image.height) == (64, 64)


def test_cancel_before_the_first_step_runs_nothing(engine: Engine) -> None:
    events: list[tuple[int, int]] = []
    with pytest.raises(GenerationCancelled):
        engine.generate(
            [make_spec()], on_step=lambda *e: events.append(e), should_cancel=lambda: True
        )
    assert events == []


def test_prompt_longer_than_77_tokens_with_a_short_negative(engine: Engine) -> None:
    long_prompt = ", ".join(["a red fox in a blue hat"] * 12)
    (image,) = engine.generate([make_spec(prompt=long_prompt, negative_prompt="dog")])
    assert image.parameters.startswith(long_prompt + "\nNegative prompt: dog\n")


def test_weighted_prompt_changes_the_picture(engine: Engine) -> None:
    plain = engine.generate([make_spec(prompt="a red fox", steps=3)])[0]
    weighted = engine.generate([make_spec(prompt="a (red:1.8) fox", steps=3)])[0]
    assert not np.array_equal(pixels(plain.png), pixels(weighted.png))


def test_png_carries_the_a1111_parameters(engine: Engine) -> None:
    spec = make_spec(prompt="a cat in a hat", negative_prompt="blurry", seed=1234, cfg=7.5)
    (image,) = engine.generate([spec])
    expected = (
        "a cat in a hat\n"
        "Negative prompt: blurry\n"
        "Steps: 2, Sampler: Euler a, CFG scale: 7.5, Seed: 1234, Size: 64x64, Model: tiny"
    )
    assert image.parameters == expected
    with Image.open(io.BytesIO(image.png)) as picture:
        assert picture.format == "PNG"
        assert picture.text["parameters"] == expected


def test_bad_values_are_engine_errors(engine: Engine) -> None:
    with pytest.raises(EngineError, match="steps"):
        engine.generate([make_spec(steps=0)])
    with pytest.raises(EngineError, match="width and height"):
        engine.generate([make_spec(width=0)])


def test_generate_before_any_model_is_loaded() -> None:
    with pytest.raises(EngineError, match="no model is loaded"):
        Engine(EngineSettings(device="cpu")).generate([make_spec()])


@pytest.mark.gpu
def test_out_of_memory_is_retried_then_reported_and_the_engine_recovers(
    tiny_model_dir: Path,
) -> None:
    engine = Engine(EngineSettings(device="cuda"))
    engine.load(str(tiny_model_dir))
    total = torch.cuda.get_device_properties(0).total_memory
    # Cap this process at ~300 MB: the tiny weights fit, a 2048x2048 picture does
    # not, with or without attention slicing and VAE tiling.
    torch.cuda.set_per_process_memory_fraction(300e6 / total)
    try:
        with pytest.raises(EngineError) as caught:
            engine.generate([make_spec(width=2048, height=2048)])
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert str(caught.value) == OUT_OF_MEMORY_MESSAGE
    (image,) = engine.generate([make_spec()])
    assert (image.width, image.height) == (64, 64)


def test_a_picture_is_the_same_alone_and_batched_with_a_long_prompt(engine: Engine) -> None:
    short = make_spec(prompt="a red fox", seed=21)
    long = make_spec(prompt=", ".join(["a red fox in a blue hat"] * 12), seed=22)
    (alone,) = engine.generate([short])
    batched, _ = engine.generate([short, long])
    assert np.array_equal(pixels(alone.png), pixels(batched.png))
