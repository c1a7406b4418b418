"""Per-model options: a VAE override, a dedicated inpainting UNet, models kept in RAM."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.pipelines import Engine
from engine.types import EngineSettings, ModelOptions
from tests.engine.helpers import gradient, make_spec, pixels, png_bytes


def test_a_vae_override_replaces_the_models_own(tiny_model_dir: Path, tmp_path: Path) -> None:
    from diffusers import AutoencoderKL

    torch.manual_seed(5)
    other = AutoencoderKL.from_config(AutoencoderKL.load_config(tiny_model_dir / "vae"))
    other.save_pretrained(tmp_path / "vae")
    options = {"tiny": ModelOptions(vae=str(tmp_path / "vae"))}
    engine = Engine(
        EngineSettings(device="cpu", models={"tiny": str(tiny_model_dir)}, model_options=options)
    )
    engine.load("tiny")
    loaded = engine.pipeline.vae.state_dict()
    assert all(torch.equal(value, loaded[key]) for key, value in other.state_dict().items())
    plain = Engine(EngineSettings(device="cpu"))
    plain.load(str(tiny_model_dir))
    spec = make_spec(seed=2)
    assert not np.array_equal(
        pixels(engine.generate([spec])[0].png), pixels(plain.generate([spec])[0].png)
    )


def test_an_inpainting_checkpoint_serves_inpaint_jobs(tiny_model_dir: Path, tmp_path: Path) -> None:
    from diffusers import UNet2DConditionModel

    # A 9-channel UNet: latents, mask and masked-picture latents, as SD inpainting models.
    inpainter = Path(shutil.copytree(tiny_model_dir, tmp_path / "inpainter"))
    config = dict(UNet2DConditionModel.load_config(inpainter / "unet"))
    config["in_channels"] = 9
    torch.manual_seed(6)
    UNet2DConditionModel.from_config(config).save_pretrained(inpainter / "unet")
    options = {"tiny": ModelOptions(inpaint_source=str(inpainter))}
    engine = Engine(
        EngineSettings(device="cpu", models={"tiny": str(tiny_model_dir)}, model_options=options)
    )
    engine.load("tiny")
    assert engine._model is not None
    assert engine._model.pipelines["inpaint"].unet.config.in_channels == 9
    assert engine.pipeline.unet.config.in_channels == 4
    mask = np.zeros((64, 64, 3), dtype=np.uint8)
    mask[:32] = 255
    text2img, inpaint = engine.generate(
        [
            make_spec(),
            make_spec(init_image=png_bytes(gradient()), mask_image=png_bytes(mask), strength=1.0),
        ]
    )
    assert pixels(text2img.png).std() > 1
    assert np.array_equal(pixels(inpaint.png)[32:], gradient()[32:].astype(np.int16))


def test_parked_models_come_back_without_reloading(
    tiny_model_dir: Path, tiny_sdxl_dir: Path
) -> None:
    engine = Engine(EngineSettings(device="cpu", keep_in_ram=1))
    engine.load(str(tiny_model_dir))
    unet = engine.pipeline.unet
    (before,) = engine.generate([make_spec(seed=4)])
    engine.load(str(tiny_sdxl_dir))
    assert engine.model_info is not None and engine.model_info.family == "sdxl"
    engine.load(str(tiny_model_dir))
    assert engine.pipeline.unet is unet
    (after,) = engine.generate([make_spec(seed=4)])
    assert np.array_equal(pixels(before.png), pixels(after.png))


@pytest.mark.gpu
def test_offload_and_speed_options_paint_on_cuda(tiny_sdxl_dir: Path) -> None:
    for options in ({"offload": "model"}, {"channels_last": True, "fuse_qkv": True}):
        engine = Engine(EngineSettings(device="cuda", **options))  # type: ignore[arg-type]
        engine.load(str(tiny_sdxl_dir))
        (image,) = engine.generate([make_spec(sampler="Euler")])
        assert pixels(image.png).std() > 1
