"""Live previews in the engine: each family's latents become small RGB JPEGs of the
picture's shape, at most once per interval, and never cost the picture."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.families import flux, sd, sd3, sdxl
from engine.pipelines import Engine
from engine.previews import MAX_SIDE, LatentPreview, Previewer, preview_size, project
from engine.types import EngineSettings
from engine.worker import generate_job
from tests.engine.helpers import make_spec

FAMILIES = ["sd", "sdxl", "sd3", "flux"]


@pytest.fixture(scope="module")
def engines(
    tiny_model_dir: Path, tiny_sdxl_dir: Path, tiny_sd3_dir: Path, tiny_flux_dir: Path
) -> dict[str, Engine]:
    folders = {
        "sd": tiny_model_dir,
        "sdxl": tiny_sdxl_dir,
        "sd3": tiny_sd3_dir,
        "flux": tiny_flux_dir,
    }
    loaded = {}
    for name, folder in folders.items():
        engine = Engine(EngineSettings(device="cpu", models={name: str(folder)}))
        engine.load(name)
        loaded[name] = engine
    return loaded


def ticking_clock() -> itertools.count:
    """A clock one second further on at every read: every check finds a preview due."""
    return itertools.count()


def collecting(interval: float = 0.5) -> tuple[Previewer, list[dict[int, bytes]]]:
    sent: list[dict[int, bytes]] = []
    clock = ticking_clock()
    return Previewer(interval, sent.append, clock=lambda: float(next(clock))), sent


def decoded(jpeg: bytes) -> Image.Image:
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.format == "JPEG"
        image.load()
        return image


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_previews_every_picture_at_its_aspect(
    engines: dict[str, Engine], family: str
) -> None:
    engine = engines[family]
    assert engine.model_info is not None and engine.model_info.family == family
    previews, sent = collecting()
    specs = [
        make_spec(
            seed=seed, steps=3, width=96, height=64, sampler=engine.model_info.default_sampler
        )
        for seed in (1, 2)
    ]
    engine.generate(specs, previews=previews)

    assert len(sent) == 3  # one per step: the clock says each one is due
    for pictures in sent:
        assert sorted(pictures) == [0, 1]
        for jpeg in pictures.values():
            image = decoded(jpeg)
            assert image.mode == "RGB"
            assert image.size == (96, 64)  # never larger than the picture itself


def test_previews_of_a_job_split_into_calls_are_indexed_in_the_job(
    engines: dict[str, Engine],
) -> None:
    previews, sent = collecting()
    specs = [make_spec(seed=seed, steps=2) for seed in (1, 2, 3)]
    generate_job(
        engines["sd"], specs, 2, lambda step, total: None, lambda: False, previews=previews
    )
    assert [sorted(pictures) for pictures in sent] == [[0, 1], [0, 1], [2], [2]]


def test_no_preview_before_the_interval_and_none_when_off(engines: dict[str, Engine]) -> None:
    sent: list[dict[int, bytes]] = []
    engines["sd"].generate([make_spec(steps=3)], previews=Previewer(3600.0, sent.append))
    engines["sd"].generate([make_spec(steps=3)], previews=Previewer(0.0, sent.append))
    assert sent == []


def test_a_failing_preview_costs_nothing_but_itself(
    engines: dict[str, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engines["sd"]
    (expected,) = engine.generate([make_spec(steps=2)])

    def broken(*args: object) -> list[Image.Image]:
        raise RuntimeError("no preview today")

    monkeypatch.setattr(LatentPreview, "images", broken)
    previews, sent = collecting()
    (picture,) = engine.generate([make_spec(steps=2)], previews=previews)
    assert sent == [] and picture.png == expected.png


@pytest.mark.parametrize(
    ("module", "channels"), [(sd, 4), (sdxl, 4), (sd3, 16), (flux, 16)], ids=FAMILIES
)
def test_the_projection_of_real_sized_latents(module: object, channels: int) -> None:
    factors = module.PREVIEW_FACTORS  # type: ignore[attr-defined]
    assert len(factors) == channels and all(len(row) == 3 for row in factors)
    latents = torch.randn(2, channels, 128, 96, generator=torch.Generator().manual_seed(0))
    rgb = project(latents, factors, module.PREVIEW_BIAS)  # type: ignore[attr-defined]
    assert rgb.shape == (2, 128, 96, 3) and rgb.dtype == torch.uint8
    assert int(rgb.max()) > int(rgb.min())  # a picture, not a flat colour


def test_flux_latents_are_unpacked_by_the_family_before_projection(
    engines: dict[str, Engine],
) -> None:
    pipe = engines["flux"].pipeline
    width, height = 1024, 768
    factor = pipe.vae_scale_factor
    # Flux's packed shape: (batch, (h/2) * (w/2) tokens, 16 channels x 2 x 2).
    tokens = (height // factor // 2) * (width // factor // 2)
    packed = torch.randn(1, tokens, 64)
    (image,) = LatentPreview("flux").images(pipe, packed, width, height)
    assert image.mode == "RGB" and image.size == (MAX_SIDE, 192)


def test_preview_size_keeps_the_aspect_within_the_limit() -> None:
    assert preview_size(1024, 1024) == (256, 256)
    assert preview_size(1216, 832) == (256, 175)
    assert preview_size(64, 96) == (64, 96)


def build_tiny_taesd(folder: Path, latent_channels: int = 4) -> Path:
    """A TAESD-shaped decoder (diffusers AutoencoderTiny) with random weights."""
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
        latent_channels=latent_channels,
    ).save_pretrained(folder)
    return folder


def test_preview_vae_decodes_the_previews(tiny_model_dir: Path, tmp_path: Path) -> None:
    spec = make_spec(steps=2, width=96, height=64)
    plain = Engine(EngineSettings(device="cpu"))
    plain.load(str(tiny_model_dir))
    taesd = Engine(EngineSettings(device="cpu", preview_vae=str(build_tiny_taesd(tmp_path / "t"))))
    taesd.load(str(tiny_model_dir))
    projected, projected_sent = collecting()
    decoded_, decoded_sent = collecting()
    (expected,) = plain.generate([spec], previews=projected)
    (picture,) = taesd.generate([spec], previews=decoded_)

    assert picture.png == expected.png  # the preview decoder changes only the previews
    assert [decoded(p[0]).size for p in decoded_sent] == [(96, 64), (96, 64)]
    assert [p[0] for p in decoded_sent] != [p[0] for p in projected_sent]


def test_a_preview_vae_that_does_not_load_falls_back_to_the_projection(
    tiny_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = Engine(EngineSettings(device="cpu", preview_vae=str(tmp_path / "missing")))
    engine.load(str(tiny_model_dir))
    previews, sent = collecting()
    engine.generate([make_spec(steps=2)], previews=previews)
    assert [decoded(p[0]).size for p in sent] == [(64, 64), (64, 64)]
    assert "preview_vae" in caplog.text
