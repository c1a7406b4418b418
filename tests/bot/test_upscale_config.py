"""`[upscale]`: parsed, checked at start, and passed on to the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from engine.types import UpscaleSettings


def load(tmp_path: Path, section: str) -> object:
    path = tmp_path / "config.toml"
    path.write_text(f"[upscale]\n{section}\n")
    return load_config(path)


def test_defaults_resize_with_lanczos_and_paint_details(tmp_path: Path) -> None:
    config = load_config(tmp_path / "missing.toml", required=False)
    assert config.upscale.detail_strength == 0.3
    assert config.engine_settings().upscale == UpscaleSettings(model="", tile=512, overlap=32)


def test_a_model_path_is_read_from_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "upscalers").mkdir()
    (tmp_path / "upscalers" / "4x-UltraSharp.pth").write_bytes(b"weights")
    config = load(
        tmp_path,
        'model = "upscalers/4x-UltraSharp.pth"\ndetail_strength = 0\ntile = 256\ntile_overlap = 16',
    )
    assert config.upscale.detail_strength == 0
    assert config.engine_settings().upscale == UpscaleSettings(
        model=str(tmp_path / "upscalers" / "4x-UltraSharp.pth"), tile=256, overlap=16
    )


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ('model = "nowhere/4x.pth"', "[upscale] model: {tmp}/nowhere/4x.pth does not exist"),
        ('model = "."', "[upscale] model: {tmp} is a folder; name the model file in it"),
        ("detail_strength = 0.01", "[upscale] detail_strength: 0 (no detail pass) or 0.05 to 1"),
        ("detail_strength = 1.5", "[upscale] detail_strength: 0 (no detail pass) or 0.05 to 1"),
        ('detail_strength = "low"', "[upscale] detail_strength: must be a number"),
        ("tile = 8", "[upscale] tile: must be at least 32, got 8"),
        ("tile = 64\ntile_overlap = 40", "[upscale] tile_overlap: 0 to half the tile (32)"),
        ("scale = 4", "[upscale] scale: unknown key"),
    ],
)
def test_mistakes_stop_the_start_with_one_line(tmp_path: Path, section: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, section)
    message = str(caught.value)
    assert "\n" not in message
    assert expected.format(tmp=tmp_path) in message
