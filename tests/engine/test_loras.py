"""LoRAs from the LoRA folder: `<lora:NAME:WEIGHT>` tags, weights, caching, the PNG
record, and refusals (unknown name, another family's LoRA, a path out of the folder)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from tiny_families import build_tiny_lora

from engine.loras import find_lora, list_loras, lora_family, lora_hash
from engine.pipelines import Engine
from engine.types import EngineError, EngineSettings
from tests.engine.helpers import make_spec, pixels


@pytest.fixture(scope="module")
def lora_dir(
    tiny_sdxl_dir: Path, tiny_flux_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    folder = tmp_path_factory.mktemp("loras")
    build_tiny_lora(tiny_sdxl_dir, folder / "detail.safetensors", seed=1)
    build_tiny_lora(tiny_sdxl_dir, folder / "styles" / "ink.safetensors", seed=2)
    build_tiny_lora(tiny_flux_dir, folder / "fluxstyle.safetensors", seed=3)
    return folder


@pytest.fixture(scope="module")
def engine(tiny_sdxl_dir: Path, lora_dir: Path) -> Engine:
    settings = EngineSettings(
        device="cpu", models={"xl": str(tiny_sdxl_dir)}, loras_path=str(lora_dir)
    )
    engine = Engine(settings)
    engine.load("xl")
    return engine


def paint(engine: Engine, prompt: str) -> np.ndarray:
    (image,) = engine.generate([make_spec(prompt=prompt, sampler="Euler", seed=9, steps=2)])
    return pixels(image.png)


def test_a_lora_changes_the_picture_at_weight_1_and_not_at_0(engine: Engine) -> None:
    before = paint(engine, "a red fox")
    with_lora = paint(engine, "a red fox <lora:detail:1>")
    at_zero = paint(engine, "a red fox <lora:detail:0>")
    after = paint(engine, "a red fox")
    assert np.abs(with_lora - before).mean() > 1
    assert np.array_equal(at_zero, before)
    # The LoRA stays loaded for the next job that wants it, yet this one is untouched.
    assert np.array_equal(after, before)


def test_loras_combine_and_the_tags_are_not_encoded(engine: Engine) -> None:
    one = paint(engine, "a red fox <lora:detail>")
    both = paint(engine, "a red fox <lora:detail:1> <lora:ink:0.7>")
    assert np.abs(both - one).mean() > 0.5
    # Only where a tag sits changes (spaces); the words read the same without it.
    assert np.array_equal(paint(engine, "<lora:detail:0>a red fox"), paint(engine, "a red fox"))


def test_the_png_records_loras_as_a1111_does(engine: Engine, lora_dir: Path) -> None:
    (image,) = engine.generate([make_spec(prompt="a fox <lora:Detail:0.8>", sampler="Euler")])
    first_line, *_ = image.parameters.splitlines()
    assert first_line == "a fox <lora:Detail:0.8>"
    digest = lora_hash(lora_dir / "detail.safetensors")
    assert re.fullmatch(r"[0-9a-f]{12}", digest)
    assert image.parameters.endswith(f', Lora hashes: "detail: {digest}"')


def test_batches_hold_one_lora_set_only(engine: Engine) -> None:
    specs = [
        make_spec(prompt="a red fox", sampler="Euler", seed=9),
        make_spec(prompt="a red fox <lora:detail>", sampler="Euler", seed=9),
    ]
    assert specs[0].batch_key() != specs[1].batch_key()
    plain, with_lora = engine.generate(specs)
    assert np.array_equal(pixels(plain.png), paint(engine, "a red fox"))
    assert np.abs(pixels(with_lora.png) - pixels(plain.png)).mean() > 1


def test_another_familys_lora_is_refused_by_name(engine: Engine, lora_dir: Path) -> None:
    assert lora_family(lora_dir / "fluxstyle.safetensors") == "flux"
    with pytest.raises(EngineError, match=r"LoRA 'fluxstyle' does not fit the model xl \(SDXL\)"):
        engine.generate([make_spec(prompt="a fox <lora:fluxstyle>", sampler="Euler")])
    # Refusing it changed nothing.
    assert paint(engine, "a red fox").std() > 1


def test_unknown_names_and_paths_out_of_the_folder(engine: Engine, lora_dir: Path) -> None:
    outside = lora_dir.parent / "secret.safetensors"
    outside.write_bytes((lora_dir / "detail.safetensors").read_bytes())
    (lora_dir / "escape.safetensors").symlink_to(outside)
    assert sorted(list_loras(lora_dir)) == ["detail", "fluxstyle", "ink"]
    for name in ("nope", "../secret", "escape", str(outside)):
        with pytest.raises(EngineError, match="there is no LoRA named"):
            engine.generate([make_spec(prompt=f"a fox <lora:{name}>", sampler="Euler")])
    assert find_lora(lora_dir, "INK")[0] == "ink"


def test_no_lora_folder_configured(tiny_model_dir: Path) -> None:
    engine = Engine(EngineSettings(device="cpu"))
    engine.load(str(tiny_model_dir))
    with pytest.raises(EngineError, match=r"\[loras\] path is not configured"):
        engine.generate([make_spec(prompt="a fox <lora:detail>")])


@pytest.mark.parametrize("family", ["sd", "sd3", "flux"])
def test_loras_work_in_the_other_families(
    family: str,
    tiny_model_dir: Path,
    tiny_sd3_dir: Path,
    tiny_flux_dir: Path,
    tmp_path: Path,
) -> None:
    model_dir = {"sd": tiny_model_dir, "sd3": tiny_sd3_dir, "flux": tiny_flux_dir}[family]
    build_tiny_lora(model_dir, tmp_path / "style.safetensors", seed=4)
    engine = Engine(EngineSettings(device="cpu", loras_path=str(tmp_path)))
    engine.load(str(model_dir))
    before = paint(engine, "a red fox")
    assert np.abs(paint(engine, "a red fox <lora:style>") - before).mean() > 0.5
    assert np.array_equal(paint(engine, "a red fox <lora:style:0>"), before)
    assert np.array_equal(paint(engine, "a red fox"), before)
