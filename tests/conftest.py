"""Shared fixtures: a tiny random-weight model built once per session, and configs.

No test downloads anything: the model is built from small configs (see
`tests/tiny_model.py`) and loaded through the same code path real models use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
# The tiny model gains nothing from threads, and on a shared 2-core runner OpenMP
# threads spinning against other processes made engine tests ~5x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).parent))

from tiny_model import build_tiny_pipeline


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[None]:
    """One local Ray for the whole session, started by the first test that needs it.

    Small on purpose (2 CPUs, no dashboard, a small object store): CI has 2 cores.
    Its workers import this checkout, not whatever `engine` is installed.
    """
    import ray

    root = str(Path(__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        num_cpus=2,
        num_gpus=0,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=128 * 1024**2,
        logging_level="warning",
    )

    @ray.remote(num_cpus=0)
    def engine_path() -> str:
        import engine

        return str(Path(engine.__file__).resolve())

    assert ray.get(engine_path.remote()).startswith(root), "Ray workers import another tree"
    yield
    from ray import serve

    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A diffusers folder holding a tiny SD-1.x-shaped pipeline (vae_scale_factor 2)."""
    return build_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SDXL pipeline (two CLIP encoders, pooled embedding; native 64x64)."""
    from tiny_families import build_tiny_sdxl

    return build_tiny_sdxl(tmp_path_factory.mktemp("models") / "tinyxl")


@pytest.fixture(scope="session")
def tiny_sdxl_checkpoint(tiny_sdxl_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SDXL model as one original-layout `.safetensors` file."""
    from tiny_families import save_sdxl_single_file

    folder = tmp_path_factory.mktemp("xlckpt")
    return save_sdxl_single_file(tiny_sdxl_dir, folder / "tinyxlfile.safetensors")


@pytest.fixture(scope="session")
def tiny_sd3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SD 3 pipeline (CLIP-L, CLIP-G and T5; native 64x64)."""
    from tiny_families import build_tiny_sd3

    return build_tiny_sd3(tmp_path_factory.mktemp("models") / "tinysd3")


@pytest.fixture(scope="session")
def tiny_flux_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny schnell-shaped Flux pipeline (CLIP + T5; diffusers' native 128 latents,
    256x256 with the tiny VAE)."""
    from tiny_families import build_tiny_flux

    return build_tiny_flux(tmp_path_factory.mktemp("models") / "tinyflux")


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tiny model as one single-file `.safetensors` checkpoint."""
    from tiny_model import save_single_file

    folder = tmp_path_factory.mktemp("ckpt")
    return save_single_file(tiny_model_dir, folder / "tinyckpt.safetensors")


@pytest.fixture(scope="session")
def write_config(tiny_model_dir: Path) -> Callable[..., Path]:
    """Writes the `config_file` TOML into a folder, plus `extra` sections; for fixtures
    with a wider scope than `config_file` (e.g. one bot per test module).
    """

    def write(folder: Path, extra: str = "") -> Path:
        path = folder / "config.toml"
        path.write_text(
            f"""
[engine]
default_model = "tiny"
device = "cpu"
# Off unless a test is about them: a preview photo in the chat depends on how long a
# job takes, which tests of other things should not (tests/bot/adapters/*/test_previews.py).
preview_every = 0

[models.tiny]
source = "{tiny_model_dir}"
default_steps = 4
width = 64
height = 64

[storage]
path = "{folder / "data"}"
{extra}
"""
        )
        return path

    return write


@pytest.fixture
def config_file(tmp_path: Path, write_config: Callable[..., Path]) -> Iterator[Path]:
    """A config.toml with the tiny model as `tiny` (default) and a data folder in tmp."""
    yield write_config(tmp_path)
