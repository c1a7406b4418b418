"""Upscale jobs: a spandrel model (tiny, random, built here) or Lanczos, then a detail pass."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from engine.client import EngineClient
from engine.pipelines import Engine
from engine.types import EngineError, EngineSettings, ImageSpec, ModelLoadError, UpscaleSettings
from engine.upscaler import _feather, _spans, load_upscaler, run_tiled
from tests.engine.helpers import gradient, make_spec, pixels, png_bytes
from tests.tiny_upscaler import save_tiny_upscaler

SOURCE = gradient(width=64, height=48)


@pytest.fixture(scope="module")
def upscaler_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_upscaler(tmp_path_factory.mktemp("upscaler") / "4x-Tiny.pth")


def engine_with(tiny_model_dir: Path, upscale: UpscaleSettings) -> Engine:
    engine = Engine(
        EngineSettings(device="cpu", models={"tiny": str(tiny_model_dir)}, upscale=upscale)
    )
    engine.load("tiny")
    return engine


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path, upscaler_file: Path) -> Engine:
    return engine_with(
        tiny_model_dir, UpscaleSettings(model=str(upscaler_file), tile=32, overlap=8)
    )


def upscale_spec(strength: float) -> ImageSpec:
    return make_spec(
        init_image=png_bytes(SOURCE), width=128, height=96, upscale=2, strength=strength
    )


def test_an_upscale_doubles_the_side_and_says_how_in_the_png(engine: Engine) -> None:
    result = engine.generate([upscale_spec(0.3)])[0]
    assert (result.width, result.height) == (128, 96)
    assert pixels(result.png).shape == (96, 128, 3)
    assert result.parameters.endswith(
        "Denoising strength: 0.3, Hires upscale: 2, Hires upscaler: 4x-Tiny"
    )
    with Image.open(io.BytesIO(result.png)) as picture:
        assert picture.info["parameters"] == result.parameters


def test_without_a_detail_pass_the_picture_is_the_models_output(
    engine: Engine, upscaler_file: Path
) -> None:
    result = engine.generate([upscale_spec(0)])[0]
    assert "Denoising strength" not in result.parameters
    assert result.parameters.endswith("Hires upscale: 2, Hires upscaler: 4x-Tiny")
    upscaler = load_upscaler(UpscaleSettings(model=str(upscaler_file)), "cpu", torch.float32)
    expected = np.asarray(upscaler.upscale(Image.fromarray(SOURCE), (128, 96))).astype(np.int16)
    # Tiled (32 px) in the engine, whole here: the seams blend to within a level or two.
    assert np.abs(pixels(result.png) - expected).max() <= 2
    lanczos = np.asarray(Image.fromarray(SOURCE).resize((128, 96), Image.Resampling.LANCZOS))
    assert np.abs(pixels(result.png) - lanczos.astype(np.int16)).mean() > 5


def test_the_detail_pass_repaints_the_enlarged_picture(engine: Engine) -> None:
    plain, detailed = (engine.generate([upscale_spec(s)])[0] for s in (0, 0.5))
    assert np.abs(pixels(plain.png) - pixels(detailed.png)).mean() > 2


def test_without_a_model_it_is_lanczos(tiny_model_dir: Path) -> None:
    engine = engine_with(tiny_model_dir, UpscaleSettings())
    result = engine.generate([upscale_spec(0)])[0]
    lanczos = np.asarray(Image.fromarray(SOURCE).resize((128, 96), Image.Resampling.LANCZOS))
    assert np.array_equal(pixels(result.png), lanczos)
    assert result.parameters.endswith("Hires upscale: 2, Hires upscaler: Lanczos")
    detailed = engine.generate([upscale_spec(0.3)])[0]
    assert (detailed.width, detailed.height) == (128, 96)
    assert "Denoising strength: 0.3, Hires upscale: 2, Hires upscaler: Lanczos" in (
        detailed.parameters
    )


def test_tiles_blend_into_the_untiled_result(upscaler_file: Path) -> None:
    model = load_upscaler(UpscaleSettings(model=str(upscaler_file)), "cpu", torch.float32)._model
    torch.manual_seed(3)
    picture = torch.rand(1, 3, 40, 52)
    with torch.inference_mode():
        whole = model(picture)
        tiled = run_tiled(model, picture, 4, 16, 8)
        butted = run_tiled(model, picture, 4, 16, 0)  # tiles side by side, no blending
    assert tiled.shape == whole.shape == (1, 3, 160, 208)
    blended_error = (tiled - whole).abs().max().item()
    assert blended_error < 0.01
    # The comparison can tell: without an overlap the seams show.
    assert (butted - whole).abs().max().item() > 3 * blended_error


@given(length=st.integers(1, 400), tile=st.integers(8, 128), overlap=st.integers(0, 32))
def test_tiles_cover_every_pixel_and_stay_inside(length: int, tile: int, overlap: int) -> None:
    spans = _spans(length, tile, overlap)
    covered = np.zeros(length, dtype=bool)
    for start, end in spans:
        assert 0 <= start < end <= length and end - start <= tile
        covered[start:end] = True
    assert covered.all()
    for start, end in spans:
        fade = _feather(end - start, 1, overlap, (start > 0, end < length, False, False))
        assert fade.min() > 0 and fade.max() <= 1


def test_a_file_that_is_no_upscaler_is_refused_at_start(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(ModelLoadError, match=r"\[upscale\] model .*nope.pth: no such file"):
        Engine(EngineSettings(device="cpu", upscale=UpscaleSettings(model=str(missing))))
    text = tmp_path / "notes.pth"
    text.write_text("not a model")
    with pytest.raises(ModelLoadError, match=r"notes.pth: cannot be loaded"):
        load_upscaler(UpscaleSettings(model=str(text)), "cpu", torch.float32)
    unknown = tmp_path / "unknown.pth"
    torch.save({"layer.weight": torch.zeros(3, 3)}, unknown)
    with pytest.raises(ModelLoadError, match=r"not a super-resolution model spandrel recognises"):
        load_upscaler(UpscaleSettings(model=str(unknown)), "cpu", torch.float32)


async def test_the_engine_process_refuses_to_start_with_such_a_file(tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.safetensors"
    unknown.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    client = EngineClient(EngineSettings(device="cpu", upscale=UpscaleSettings(model=str(unknown))))
    try:
        with pytest.raises(EngineError, match=r"\[upscale\] model .*unknown.safetensors: "):
            await client.start()
    finally:
        await client.close()


def test_safetensors_files_load_too(tmp_path: Path) -> None:
    path = save_tiny_upscaler(tmp_path / "2x-Tiny.safetensors", scale=2)
    upscaler = load_upscaler(UpscaleSettings(model=str(path)), "cpu", torch.float32)
    assert (upscaler.name, upscaler.scale) == ("2x-Tiny", 2)
    assert upscaler.upscale(Image.fromarray(SOURCE), (100, 70)).size == (100, 70)


def test_spandrel_imports_without_torchvision(upscaler_file: Path) -> None:
    """PyPI has no CPU torchvision for Linux: a CPU install goes without it."""
    script = f"""
import importlib.abc, sys
class NoTorchvision(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "torchvision":
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, NoTorchvision())
import torch
from engine.types import UpscaleSettings
from engine.upscaler import load_upscaler
upscaler = load_upscaler(UpscaleSettings(model={str(upscaler_file)!r}), "cpu", torch.float32)
assert upscaler.scale == 4
assert not any(name.startswith("torchvision") for name in sys.modules), "stand-in left behind"
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.gpu
def test_a_2048_output_on_the_gpu_holds_one_tile_at_a_time(upscaler_file: Path) -> None:
    picture = Image.fromarray(gradient(width=1024, height=1024))
    peaks = {}
    for tile in (256, 1024):  # 1024: the whole picture at once
        settings = UpscaleSettings(model=str(upscaler_file), tile=tile, overlap=32)
        upscaler = load_upscaler(settings, "cuda", torch.float16)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        assert upscaler.upscale(picture, (2048, 2048)).size == (2048, 2048)
        peaks[tile] = torch.cuda.max_memory_allocated()
    # Tiles of a sixteenth of the picture: a fraction of the memory.
    assert peaks[256] < peaks[1024] / 4
