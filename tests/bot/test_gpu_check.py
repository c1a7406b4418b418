"""The start-up warning for a GPU that `device = "auto"` would leave idle."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.config import Config, EngineConfig
from bot.gpu_check import warn_if_gpu_unused


def with_driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An `nvidia-smi` on PATH, as an installed NVIDIA driver puts one."""
    (tmp_path / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")


def test_a_torch_that_cannot_use_the_driver_s_gpu_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    # The probe really imports the installed torch: a CPU build in CI, a CUDA build
    # without a usable GPU on some runners, a working one on a GPU machine.
    with_driver(tmp_path, monkeypatch)
    thread = warn_if_gpu_unused(Config())
    assert thread is not None
    thread.join(timeout=120)
    records = [r for r in caplog.records if r.name == "atelier.gpu_check"]
    if torch.cuda.is_available():
        assert records == []  # the GPU will be used: nothing to warn about
        return
    (record,) = records
    assert record.levelno == logging.WARNING
    if torch.version.cuda is None:
        assert "CPU-only build" in record.getMessage()
    else:
        assert f"(built for CUDA {torch.version.cuda}) cannot use the GPU" in record.getMessage()
    assert "ATELIER_TORCH=cuda" in record.getMessage()


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:1"])
def test_a_device_chosen_on_purpose_is_not_second_guessed(
    device: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_driver(tmp_path, monkeypatch)
    assert warn_if_gpu_unused(Config(engine=EngineConfig(device=device))) is None


def test_no_driver_no_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert warn_if_gpu_unused(Config()) is None
