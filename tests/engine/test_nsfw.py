"""The NSFW check: diffusers' safety checker code with controlled tiny weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_model import build_tiny_safety_checker

from engine.pipelines import Engine
from engine.types import EngineSettings, ModelLoadError
from tests.engine.helpers import gradient, load_engine, make_spec, pixels, png_bytes


@pytest.fixture(scope="module")
def flag_everything(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nsfw") / "flag-everything"
    return build_tiny_safety_checker(folder, flag_everything=True)


@pytest.fixture(scope="module")
def flag_nothing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nsfw") / "flag-nothing"
    return build_tiny_safety_checker(folder, flag_everything=False)


@pytest.fixture(scope="module")
def unchecked(tiny_model_dir: Path) -> Engine:
    return load_engine(tiny_model_dir)


def test_flagged_pictures_are_marked_but_left_as_they_are(
    tiny_model_dir: Path, flag_everything: Path, unchecked: Engine
) -> None:
    engine = load_engine(tiny_model_dir, nsfw_classifier=str(flag_everything))
    specs = [make_spec(seed=1), make_spec(seed=2)]
    checked = engine.generate(specs)
    assert [image.nsfw for image in checked] == [True, True]
    # The bot decides what to do with a flagged picture, so the pixels are untouched.
    for image, plain in zip(checked, unchecked.generate(specs), strict=True):
        assert np.array_equal(pixels(image.png), pixels(plain.png))
        assert pixels(image.png).max() > 0


def test_clean_pictures_are_not_flagged(tiny_model_dir: Path, flag_nothing: Path) -> None:
    engine = load_engine(tiny_model_dir, nsfw_classifier=str(flag_nothing))
    images = engine.generate(
        [make_spec(seed=1), make_spec(seed=2, init_image=png_bytes(gradient()))]
    )
    assert [image.nsfw for image in images] == [False, False]


def test_without_a_classifier_nothing_is_flagged(unchecked: Engine) -> None:
    assert [image.nsfw for image in unchecked.generate([make_spec()])] == [False]


def test_a_missing_classifier_is_a_load_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    engine = Engine(EngineSettings(device="cpu", nsfw_classifier=str(tmp_path / "absent")))
    with pytest.raises(ModelLoadError, match="cannot load the NSFW classifier 'absent'"):
        engine.load(str(tiny_model_dir))
    assert engine.model_name is None
