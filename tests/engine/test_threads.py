"""`[engine] threads`: the engine process computes with the configured thread count."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from engine.client import EngineClient
from engine.threads import CUDA_THREADS, available_cores, resolve_threads
from engine.types import EngineSettings


@pytest.mark.parametrize("configured", [1, 0])
async def test_the_engine_process_runs_with_the_configured_threads(
    tiny_model_dir: Path, configured: int
) -> None:
    settings = EngineSettings(
        device="cpu", models={"tiny": str(tiny_model_dir)}, threads=configured
    )
    client = EngineClient(settings, max_batch=1)
    await client.start()
    try:
        health = await client.health()
    finally:
        await client.close()
    expected = configured or max(1, available_cores() - 1)
    assert health["threads"] == expected


def test_automatic_threads_leave_a_core_on_the_cpu_and_take_few_on_cuda() -> None:
    assert resolve_threads(0, "cpu", cores=16) == 15
    assert resolve_threads(0, "cpu", cores=1) == 1
    assert resolve_threads(0, "cuda:0", cores=16) == CUDA_THREADS
    assert resolve_threads(0, "cuda", cores=2) == 2
    assert resolve_threads(3, "cpu", cores=16) == 3
    assert resolve_threads(3, "cuda", cores=16) == 3


def test_threads_come_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[engine]\nthreads = 2\n")
    assert load_config(path).engine_settings().threads == 2
    path.write_text("[engine]\nthreads = -1\n")
    with pytest.raises(ConfigError, match=r"\[engine\] threads: must be at least 0"):
        load_config(path)
