"""img2img and inpaint: the pipelines built with from_pipe over the loaded weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.pipelines import Engine
from engine.types import EngineError
from tests.engine.helpers import gradient, load_engine, make_spec, pixels, png_bytes


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> Engine:
    return load_engine("tiny", models={"tiny": str(tiny_model_dir)})


INPUT = gradient()
OTHER_INPUT = gradient(blue=20)[::-1].copy()


def test_img2img_starts_from_the_given_picture(engine: Engine) -> None:
    text2img = engine.generate([make_spec(steps=4)])[0]
    # Low strength: the tiny random VAE maps different pictures to similar latents,
    # so at high strength the input's trace in the result is faint.
    from_input, from_other = (
        engine.generate([make_spec(steps=4, strength=0.3, init_image=png_bytes(p))])[0]
        for p in (INPUT, OTHER_INPUT)
    )
    assert not np.array_equal(pixels(from_input.png), INPUT)
    assert not np.array_equal(pixels(from_input.png), pixels(text2img.png))
    assert np.abs(pixels(from_input.png) - pixels(from_other.png)).mean() > 2


def test_img2img_strength_matters(engine: Engine) -> None:
    weak, strong = (
        engine.generate([make_spec(steps=4, init_image=png_bytes(INPUT), strength=s)])[0]
        for s in (0.3, 0.9)
    )
    assert np.abs(pixels(weak.png) - pixels(strong.png)).mean() > 2
    assert weak.parameters.endswith(", Model: tiny, Denoising strength: 0.3")


def test_img2img_is_reproducible_and_resizes_its_input(engine: Engine) -> None:
    big_input = png_bytes(gradient(width=100, height=80))
    spec = make_spec(init_image=big_input, width=96, height=64)
    first, again = (engine.generate([spec])[0] for _ in range(2))
    assert (first.width, first.height) == (96, 64)
    assert np.array_equal(pixels(first.png), pixels(again.png))


def test_img2img_batch_gives_each_picture_its_own_input(engine: Engine) -> None:
    specs = [
        make_spec(seed=5, steps=4, strength=0.3, init_image=png_bytes(INPUT)),
        make_spec(seed=5, steps=4, strength=0.3, init_image=png_bytes(OTHER_INPUT)),
    ]
    events: list[tuple[int, int]] = []
    batch = [
        pixels(image.png) for image in engine.generate(specs, on_step=lambda *e: events.append(e))
    ]
    assert events == [(1, 1)]  # one pipeline call for both pictures
    alone = [pixels(engine.generate([spec])[0].png) for spec in specs]
    for mine, other in ((0, 1), (1, 0)):
        assert np.abs(batch[mine] - alone[mine]).max() <= 2
        assert np.abs(batch[mine] - alone[other]).mean() > 2


def test_img2img_progress_counts_only_the_steps_strength_keeps(engine: Engine) -> None:
    events: list[tuple[int, int]] = []
    engine.generate(
        [make_spec(steps=8, strength=0.5, init_image=png_bytes(INPUT))],
        on_step=lambda *e: events.append(e),
    )
    assert events == [(step, 4) for step in range(1, 5)]


def test_tiny_strength_with_few_steps_still_runs_one_step(engine: Engine) -> None:
    events: list[tuple[int, int]] = []
    (image,) = engine.generate(
        [make_spec(steps=2, strength=0.1, init_image=png_bytes(INPUT))],
        on_step=lambda *e: events.append(e),
    )
    assert events == [(1, 1)]
    assert "Steps: 2," in image.parameters


def test_inpaint_repaints_only_the_masked_area(engine: Engine) -> None:
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[:, :32] = 255  # repaint the left half
    spec = make_spec(steps=4, strength=0.9, init_image=png_bytes(INPUT), mask_image=png_bytes(mask))
    (image,) = engine.generate([spec])
    result = pixels(image.png)
    # diffusers only blends the kept area in latent space, and the VAE's round trip
    # changes those pixels; the engine pastes the original back, so they are exact.
    assert np.array_equal(result[:, 32:], INPUT[:, 32:])
    assert np.abs(result[:, :32] - INPUT[:, :32]).mean() > 10
    assert "Denoising strength: 0.9" in image.parameters


def test_unreadable_input_picture_is_an_engine_error(engine: Engine) -> None:
    with pytest.raises(EngineError, match="not a picture"):
        engine.generate([make_spec(init_image=b"this is not an image")])
    with pytest.raises(EngineError, match="mask is not a picture"):
        engine.generate([make_spec(init_image=png_bytes(INPUT), mask_image=b"\x89PNG broken")])
