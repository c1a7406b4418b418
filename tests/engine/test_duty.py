"""The engine counts the time it spends in pipeline calls: the duty cycle's numerator."""

from __future__ import annotations

import time
from pathlib import Path

from tests.engine.helpers import load_engine, make_spec


def test_the_duty_meter_counts_each_pipeline_call_within_its_wall_time(
    tiny_model_dir: Path,
) -> None:
    engine = load_engine("tiny", models={"tiny": str(tiny_model_dir)})
    before = engine.duty.reading()
    started = time.perf_counter()
    # Two sizes: two pipeline calls.
    engine.generate([make_spec(seed=1, steps=4), make_spec(seed=2, steps=4, width=128)])
    wall = time.perf_counter() - started
    after = engine.duty.reading()
    assert after["calls"] - before["calls"] == 2
    assert 0 < after["denoising_s"] - before["denoising_s"] <= wall
