"""SDXL, SD 3 and Flux through the real loading code, on tiny random-weight models:
each mode at the model's native size, seeds, weighting, samplers, LoRAs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.inspect import inspect_model
from engine.pipelines import Engine
from engine.types import EngineError, EngineSettings, ImageSpec
from tests.engine.helpers import gradient, make_spec, pixels, png_bytes

FAMILIES = ["sdxl", "sd3", "flux"]


@pytest.fixture(scope="module")
def family_dirs(tiny_sdxl_dir: Path, tiny_sd3_dir: Path, tiny_flux_dir: Path) -> dict[str, Path]:
    return {"sdxl": tiny_sdxl_dir, "sd3": tiny_sd3_dir, "flux": tiny_flux_dir}


@pytest.fixture(scope="module")
def engines(family_dirs: dict[str, Path]) -> dict[str, Engine]:
    loaded = {}
    for name, folder in family_dirs.items():
        engine = Engine(EngineSettings(device="cpu", models={name: str(folder)}))
        engine.load(name)
        loaded[name] = engine
    return loaded


def native_spec(engine: Engine, **changes: object) -> ImageSpec:
    info = engine.model_info
    assert info is not None
    return small_spec(engine, width=info.width, height=info.height, **changes)


def small_spec(engine: Engine, **changes: object) -> ImageSpec:
    """64x64 (quick for Flux, whose native size is 256 here) with the family's sampler."""
    info = engine.model_info
    assert info is not None
    return make_spec(**{"sampler": info.default_sampler, **changes})


@pytest.mark.parametrize("family", FAMILIES)
def test_every_mode_paints_at_the_native_size(engines: dict[str, Engine], family: str) -> None:
    engine = engines[family]
    info = engine.model_info
    assert info is not None and info.family == family
    size = (info.width, info.height)
    picture = png_bytes(gradient(*size))
    mask = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    mask[:, : size[0] // 2] = 255
    text2img, img2img, inpaint = engine.generate(
        [
            native_spec(engine, steps=1),
            # One denoising step each: ample to see the mode work, quick at Flux's 256.
            native_spec(engine, steps=1, init_image=picture, strength=0.5),
            native_spec(
                engine, steps=1, init_image=picture, mask_image=png_bytes(mask), strength=0.5
            ),
        ]
    )
    for image in (text2img, img2img, inpaint):
        assert (image.width, image.height) == size
        assert pixels(image.png).std() > 1
    assert "Denoising strength: 0.5" in img2img.parameters
    # Inpaint leaves the black half of the mask exactly as it was.
    kept = pixels(inpaint.png)[:, size[0] // 2 :]
    assert np.array_equal(kept, gradient(*size)[:, size[0] // 2 :].astype(np.int16))


@pytest.mark.parametrize("family", FAMILIES)
def test_seeds_reproduce_and_differ(engines: dict[str, Engine], family: str) -> None:
    engine = engines[family]
    first, other = engine.generate([small_spec(engine, seed=7), small_spec(engine, seed=8)])
    (again,) = engine.generate([small_spec(engine, seed=7)])
    # Batched matrix maths may round differently in the last bit.
    assert np.abs(pixels(first.png) - pixels(again.png)).max() <= 2
    assert np.abs(pixels(first.png) - pixels(other.png)).mean() > 1


@pytest.mark.parametrize(("family", "weighted"), [("sdxl", True), ("sd3", False), ("flux", True)])
def test_weighting_reaches_the_encoder_where_the_family_supports_it(
    engines: dict[str, Engine], family: str, weighted: bool
) -> None:
    model = engines[family]._model
    assert model is not None
    plain = model.encoder.encode("a red fox", "")
    stronger = model.encoder.encode("a (red:1.5) fox", "")
    assert model.traits.weighting is weighted
    assert torch.equal(plain["prompt_embeds"], stronger["prompt_embeds"]) is not weighted
    # Without weighting the syntax is taken out, never read as literal brackets.
    literal = model.encoder.encode("a (red) fox", "")
    if not weighted:
        assert torch.equal(plain["prompt_embeds"], literal["prompt_embeds"])


@pytest.mark.parametrize(
    ("family", "wrong", "listed"),
    [
        ("sdxl", "Euler Beta", "DPM++ 2M Karras"),
        ("sd3", "DPM++ 2M", "Heun"),
        ("flux", "Heun", "Euler a"),
    ],
)
def test_a_sampler_the_family_cannot_use_is_refused_with_the_list(
    engines: dict[str, Engine], family: str, wrong: str, listed: str
) -> None:
    engine = engines[family]
    with pytest.raises(EngineError, match=rf"cannot use '{re.escape(wrong)}'.*{re.escape(listed)}"):
        engine.generate([small_spec(engine, sampler=wrong)])


@pytest.mark.parametrize("sampler", ["Euler", "Euler a", "Euler Karras", "Heun"])
def test_flow_samplers_paint_and_count_their_steps(
    engines: dict[str, Engine], sampler: str
) -> None:
    engine = engines["sd3"]
    events: list[tuple[int, int]] = []
    (image,) = engine.generate(
        [small_spec(engine, sampler=sampler, steps=3)], on_step=lambda *e: events.append(e)
    )
    assert f"Sampler: {sampler}," in image.parameters
    total = events[-1][1]
    assert events == [(step, total) for step in range(1, total + 1)]


def test_flux_ignores_the_negative_prompt_and_does_not_record_it(
    engines: dict[str, Engine],
) -> None:
    engine = engines["flux"]
    plain, negated = engine.generate(
        [small_spec(engine, seed=3), small_spec(engine, seed=3, negative_prompt="blurry")]
    )
    assert np.abs(pixels(plain.png) - pixels(negated.png)).max() <= 2
    assert "Negative prompt" not in negated.parameters


def test_flux_schnell_defaults(family_dirs: dict[str, Path]) -> None:
    info = inspect_model(str(family_dirs["flux"]))
    assert (info.family, info.variant, info.default_steps, info.default_cfg) == (
        "flux",
        "schnell",
        4,
        0.0,
    )
    # diffusers' Flux default: 128 latent pixels per side, x the tiny VAE's factor 2.
    assert (info.width, info.height) == (256, 256)


def test_sdxl_single_file_loads_the_same_weights(
    engines: dict[str, Engine], tiny_sdxl_checkpoint: Path
) -> None:
    info = inspect_model(str(tiny_sdxl_checkpoint))
    assert info.family == "sdxl"
    from_file = Engine(EngineSettings(device="cpu"))
    assert from_file.load(str(tiny_sdxl_checkpoint)) == "tinyxlfile"
    spec = small_spec(engines["sdxl"], seed=4)
    (image,) = from_file.generate([spec])
    (reference,) = engines["sdxl"].generate([spec])
    assert np.array_equal(pixels(image.png), pixels(reference.png))
