"""The first load of a hub model: downloaded with progress, from a fake hub on 127.0.0.1.

The engine process downloads from `tests/engine/fake_hub.py` (HF_ENDPOINT, the hub
online only in that process), slowly enough that its progress can be watched.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.client import EngineClient
from engine.download import DownloadProgress, needed_files
from engine.types import EngineSettings, ImageSpec
from tests.engine.fake_hub import EXTRA_FILES, FakeHub, make_repo, pipeline_files, use_hub

SD_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
    "image_encoder": [None, None],
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def test_a_pipeline_needs_its_components_with_one_set_of_weights() -> None:
    # The layout of runwayml/stable-diffusion-v1-5 (abridged).
    files = [
        ".gitattributes",
        "README.md",
        "model_index.json",
        "v1-5-pruned.ckpt",
        "v1-5-pruned-emaonly.safetensors",
        "feature_extractor/preprocessor_config.json",
        "safety_checker/config.json",
        "safety_checker/model.safetensors",
        "scheduler/scheduler_config.json",
        "text_encoder/config.json",
        "text_encoder/model.safetensors",
        "text_encoder/model.fp16.safetensors",
        "text_encoder/pytorch_model.bin",
        "tokenizer/merges.txt",
        "tokenizer/vocab.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "unet/diffusion_pytorch_model.non_ema.safetensors",
        "unet/diffusion_flax_model.msgpack",
        "vae/config.json",
        "vae/diffusion_pytorch_model.bin",  # no safetensors here: the .bin it is
        "vae/diffusion_pytorch_model.fp16.bin",
    ]
    assert needed_files(SD_INDEX, files) == [
        "model_index.json",
        "scheduler/scheduler_config.json",
        "text_encoder/config.json",
        "text_encoder/model.safetensors",
        "tokenizer/merges.txt",
        "tokenizer/vocab.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/config.json",
        "vae/diffusion_pytorch_model.bin",
    ]


def test_sharded_weights_come_with_their_index_and_without_the_variant() -> None:
    index = {"_class_name": "FluxPipeline", "transformer": ["diffusers", "FluxTransformer2DModel"]}
    files = [
        "model_index.json",
        "transformer/config.json",
        "transformer/diffusion_pytorch_model-00001-of-00002.safetensors",
        "transformer/diffusion_pytorch_model-00002-of-00002.safetensors",
        "transformer/diffusion_pytorch_model.safetensors.index.json",
        "transformer/diffusion_pytorch_model.bf16-00001-of-00001.safetensors",
        "transformer/diffusion_pytorch_model.safetensors.index.bf16.json",
        "transformer/diffusion_pytorch_model.bin.index.json",
    ]
    assert needed_files(index, files) == [
        "model_index.json",
        "transformer/config.json",
        "transformer/diffusion_pytorch_model-00001-of-00002.safetensors",
        "transformer/diffusion_pytorch_model-00002-of-00002.safetensors",
        "transformer/diffusion_pytorch_model.safetensors.index.json",
    ]


_names = st.sampled_from(
    ["config.json", "model", "diffusion_pytorch_model", "vocab.json", "model.fp16", "x.bf16"]
)
_suffixes = st.sampled_from(["", ".safetensors", ".bin", ".ckpt", ".msgpack", ".json"])
_folders = st.sampled_from(["", "unet/", "vae/", "safety_checker/", "extra/", "unet/sub/"])
_paths = st.builds(lambda f, n, s: f + n + s, _folders, _names, _suffixes)


@given(st.lists(_paths, unique=True))
def test_chosen_files_exist_and_one_weight_format_per_component(files: list[str]) -> None:
    index = {**SD_INDEX, "extra": [None, None]}
    chosen = needed_files(index, files)
    assert set(chosen) <= set(files)
    assert all(path == "model_index.json" or path.count("/") == 1 for path in chosen)
    assert not any(path.split("/")[0] in ("safety_checker", "extra") for path in chosen)
    for folder in ("unet", "vae"):
        weights = [
            p for p in chosen if p.startswith(f"{folder}/") and p.endswith((".safetensors", ".bin"))
        ]
        assert len({p.rsplit(".", 1)[1] for p in weights}) <= 1
        assert not any(".fp16" in p or ".bf16" in p for p in weights)


def test_percent_reaches_100_only_with_the_last_byte() -> None:
    assert DownloadProgress("m", 0, 1000).percent == 0
    assert DownloadProgress("m", 999, 1000).percent == 99
    assert DownloadProgress("m", 1000, 1000).percent == 100
    assert DownloadProgress("m", 430, 1000).percent == 43


@pytest.fixture
def hub_repo(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return make_repo(tiny_model_dir, tmp_path / "repo")


async def test_a_job_waiting_for_a_download_gets_progress_and_no_timeout(
    hub_repo: Path,
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    needed = pipeline_files(hub_repo)
    # model_index.json comes first, to tell what else to fetch; the rest is counted.
    counted = [path for path in needed if path != "model_index.json"]
    size = sum((hub_repo / path).stat().st_size for path in counted)
    # The job's timeout is shorter than the download (a download is not a hung engine)
    # but leaves the load and the painting after it time on a busy 2-core runner.
    download_seconds = 15.0
    job_timeout = 11.0
    settings = EngineSettings(device="cpu", models={"hubtiny": "atelier/tiny"})
    client = EngineClient(settings, max_batch=1, log_level=logging.INFO)
    reports: list[DownloadProgress | None] = []
    client.on_download(reports.append)
    async with contextlib.AsyncExitStack() as stack:
        hub = stack.enter_context(
            FakeHub({"atelier/tiny": hub_repo}, bytes_per_second=size / download_seconds)
        )
        use_hub(monkeypatch, hub, tmp_path / "hub-cache")
        await client.start()
        stack.push_async_callback(client.close)
        # Warm: the first load in a process imports half of transformers.
        await client.load_model(str(tiny_model_dir))
        spec = ImageSpec(prompt="a red fox", seed=1, steps=2, width=64, height=64)
        (image,) = await client.generate("job-1", "hubtiny", [spec], timeout=job_timeout)
        assert image.png.startswith(b"\x89PNG")
        assert client.current_model == "hubtiny"

        progress = [report for report in reports if report is not None]
        assert reports[-1] is None and client.downloading is None  # over
        assert {report.total for report in progress} == {size}
        done = [report.done for report in progress]
        # The bytes as they arrived (file by file here: the hub client hands them over
        # in 10 MB chunks), and never backwards.
        assert done == sorted(done) and len(set(done)) >= 3, done
        assert done[0] < size // 2
        assert any(0 < report.percent < 100 for report in progress)
        assert any(report.eta_seconds for report in progress)
        fetched = {path.removeprefix("atelier/tiny/") for path in hub.downloads}
        assert fetched == set(needed), "fetched what the pipeline needs, once"
        assert len(hub.downloads) == len(needed)
        assert not fetched & set(EXTRA_FILES)

        # Cached now: loading it again downloads nothing and reports nothing.
        await client.load_model(str(tiny_model_dir))
        reports.clear()
        assert await client.load_model("hubtiny") == "hubtiny"
        assert reports == [] and len(hub.downloads) == len(needed)

        # And with the hub out of reach (no network), the cached model still loads.
        hub.close()
        await client.load_model(str(tiny_model_dir))
        assert await client.load_model("hubtiny") == "hubtiny"
        assert reports == []

    log = capfd.readouterr().err
    total = f"{size / 1e6:.1f} MB"
    assert f"downloading hubtiny from the Hugging Face hub: {len(counted)} files, {total}" in log
    assert f"% of {total} (" in log and " left)" in log  # periodic lines with speed and ETA
    assert f"downloaded hubtiny ({total}) in " in log
    assert "model hubtiny ready: SD 1.x/2.x on cpu, float32, loaded in " in log
    assert "cannot ask the hub about atelier/tiny" in log  # then loaded from the cache
