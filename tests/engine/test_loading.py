"""Loading models from names, folders, single files and hub ids; devices; switching."""

from __future__ import annotations

import gc
import shutil
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.pipelines import Engine
from engine.types import EngineError, EngineSettings, ModelLoadError
from tests.engine.helpers import gradient, load_engine, make_spec, pixels, png_bytes


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> Engine:
    return load_engine("tiny", models={"tiny": str(tiny_model_dir)})


def test_configured_name_is_the_display_name(engine: Engine) -> None:
    assert engine.model_name == "tiny"
    (image,) = engine.generate([make_spec()])
    assert image.parameters.endswith(", Model: tiny")


def test_a_folder_path_is_shown_by_its_folder_name(tiny_model_dir: Path) -> None:
    engine = Engine(EngineSettings(device="cpu"))
    assert engine.model_name is None
    assert engine.load(str(tiny_model_dir)) == tiny_model_dir.name
    assert engine.model_name == tiny_model_dir.name


def test_single_file_checkpoint_loads_the_same_weights(
    engine: Engine, tiny_checkpoint: Path
) -> None:
    from_file = Engine(EngineSettings(device="cpu"))
    assert from_file.load(str(tiny_checkpoint)) == "tinyckpt"
    (image,) = from_file.generate([make_spec(seed=3)])
    assert image.parameters.endswith(", Model: tinyckpt")
    (reference,) = engine.generate([make_spec(seed=3)])
    assert np.array_equal(pixels(image.png), pixels(reference.png))


def test_single_file_without_its_config_offline_says_what_to_do(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    lone = shutil.copy(tiny_checkpoint, tmp_path / "lonely.safetensors")
    with pytest.raises(ModelLoadError, match=r"lonely\.safetensors: .*diffusers config") as caught:
        Engine(EngineSettings(device="cpu")).load(str(lone))
    assert "model_index.json" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_broken_files_are_load_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a safetensors header")
    with pytest.raises(ModelLoadError, match=r"^cannot load broken\.safetensors: "):
        Engine(EngineSettings(device="cpu")).load(str(broken))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ModelLoadError, match=r"must be \.safetensors or \.ckpt"):
        Engine(EngineSettings(device="cpu")).load(str(text))
    empty_folder = tmp_path / "empty"
    empty_folder.mkdir()
    with pytest.raises(ModelLoadError, match=r"^cannot load empty: "):
        Engine(EngineSettings(device="cpu")).load(str(empty_folder))


def test_unknown_names_and_missing_paths(engine: Engine) -> None:
    with pytest.raises(
        ModelLoadError, match=r"unknown model 'sdxl': not a configured model \(tiny\)"
    ):
        engine.load("sdxl")
    with pytest.raises(ModelLoadError, match="no such file or folder '/nowhere/model'"):
        engine.load("/nowhere/model")
    with pytest.raises(ModelLoadError, match=r"no such file or folder 'missing\.safetensors'"):
        engine.load("missing.safetensors")
    # Refusing a name changes nothing: the loaded model still works.
    assert engine.model_name == "tiny"
    assert len(engine.generate([make_spec()])) == 1


def test_uncached_hub_id_offline_is_a_clear_error() -> None:
    # conftest sets HF_HUB_OFFLINE=1, as an offline server would.
    with pytest.raises(
        ModelLoadError, match=r"not in the local Hugging Face cache.*HF_HUB_OFFLINE"
    ):
        Engine(EngineSettings(device="cpu")).load("someone/no-such-model")


def test_switching_models_frees_the_old_one(tiny_model_dir: Path, tiny_checkpoint: Path) -> None:
    engine = load_engine(tiny_model_dir)
    old_unet = weakref.ref(engine.pipeline.unet)
    assert engine.load(str(tiny_checkpoint)) == "tinyckpt"
    gc.collect()
    assert old_unet() is None
    assert engine.model_name == "tinyckpt"


def test_loading_the_loaded_model_again_keeps_it(engine: Engine) -> None:
    pipeline = engine.pipeline
    assert engine.load("tiny") == "tiny"
    assert engine.pipeline is pipeline


def test_a_failed_load_keeps_the_model_loaded_before(tiny_model_dir: Path, tmp_path: Path) -> None:
    engine = load_engine(tiny_model_dir)
    (before,) = engine.generate([make_spec(seed=5)])
    empty_folder = tmp_path / "empty"
    empty_folder.mkdir()
    with pytest.raises(ModelLoadError):
        engine.load(str(empty_folder))
    assert engine.model_name == tiny_model_dir.name
    (after,) = engine.generate([make_spec(seed=5)])
    assert np.array_equal(pixels(before.png), pixels(after.png))


def test_device_and_dtype_settings() -> None:
    auto = Engine(EngineSettings())
    if torch.cuda.is_available():
        assert (auto.device, auto.dtype) == ("cuda", torch.float16)
    else:
        assert (auto.device, auto.dtype) == ("cpu", torch.float32)
        with pytest.raises(EngineError, match="CUDA is not available"):
            Engine(EngineSettings(device="cuda:0"))
    assert Engine(EngineSettings(device="cpu", dtype="bfloat16")).dtype == torch.bfloat16
    with pytest.raises(EngineError, match="unknown device 'tpu'"):
        Engine(EngineSettings(device="tpu"))
    with pytest.raises(EngineError, match="unknown dtype 'int8'"):
        Engine(EngineSettings(device="cpu", dtype="int8"))


def test_half_precision_setting_holds_for_every_pipeline(tiny_model_dir: Path) -> None:
    # bfloat16 runs on a CPU; float16 is the same code path on CUDA.
    engine = Engine(EngineSettings(device="cpu", dtype="bfloat16"))
    engine.load(str(tiny_model_dir))
    # Building img2img/inpaint with from_pipe must not cast the shared weights back.
    assert engine.pipeline.unet.dtype == torch.bfloat16
    assert engine.pipeline.text_encoder.dtype == torch.bfloat16
    text2img, img2img = engine.generate(
        [make_spec(prompt="a (red:1.3) fox"), make_spec(init_image=png_bytes(gradient()))]
    )
    assert pixels(text2img.png).std() > 1
    assert pixels(img2img.png).std() > 1


def test_a_model_that_loads_but_cannot_paint_is_refused_and_the_old_one_stays(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from diffusers import UNet2DConditionModel

    # A UNet whose cross-attention width does not match the text encoder: every file
    # loads, but no picture can be made (as SDXL loaded as SD 1.x once failed).
    broken = Path(shutil.copytree(tiny_model_dir, tmp_path / "broken"))
    config = dict(UNet2DConditionModel.load_config(broken / "unet"))
    config["cross_attention_dim"] = 48
    UNet2DConditionModel.from_config(config).save_pretrained(broken / "unet")
    engine = load_engine(tiny_model_dir)
    with pytest.raises(ModelLoadError, match=r"^broken loads but cannot paint: ") as caught:
        engine.load(str(broken))
    assert "\n" not in str(caught.value)
    assert engine.model_name == tiny_model_dir.name
    assert len(engine.generate([make_spec()])) == 1


def test_a_file_of_no_known_family_is_one_clear_line(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    odd = tmp_path / "odd.safetensors"
    save_file({"encoder.layer.0.weight": torch.zeros(2, 2)}, str(odd))
    with pytest.raises(
        ModelLoadError, match=r"^cannot load odd\.safetensors: cannot tell which"
    ) as caught:
        Engine(EngineSettings(device="cpu")).load(str(odd))
    assert 'family = "sd"' in str(caught.value) and "\n" not in str(caught.value)
