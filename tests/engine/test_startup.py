"""The engine logs its start-up breakdown once: what a restart costs waiting users."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engine.worker import Done, LoadModel
from tests.engine.helpers import serve_worker


def test_the_start_up_breakdown_is_logged_once(
    tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="atelier.engine.worker")
    with serve_worker(tiny_model_dir) as worker:
        worker.conn.send(LoadModel(1, "tiny"))
        assert isinstance(worker.receive(60), Done)
        worker.conn.send(LoadModel(2, str(tiny_model_dir)))  # another name: loaded again
        assert isinstance(worker.receive(60), Done)
    lines = [r.getMessage() for r in caplog.records if "start-up" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith("engine start-up: imports ")
    assert "first model load" in lines[0] and "(tiny)" in lines[0]
