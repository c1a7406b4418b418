"""`[engine] max_batch = "auto"`: one picture per call on a CPU; on CUDA what the free
memory holds at that size, halved (and remembered) after an out-of-memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from engine.batching import AUTO, AUTO_CAP, BatchPolicy, batch_policy, scheduler_limit
from engine.worker import generate_job
from tests.engine.helpers import load_engine, make_spec

GB = 1 << 30


def test_auto_paints_one_picture_per_call_on_the_cpu(tiny_model_dir: Path) -> None:
    engine = load_engine("tiny", models={"tiny": str(tiny_model_dir)})
    totals: list[int] = []
    specs = [make_spec(seed=seed) for seed in (1, 2, 3)]
    images = generate_job(
        engine, specs, batch_policy(AUTO, "cpu"), lambda _s, total: totals.append(total), bool
    )
    assert [image.seed for image in images] == [1, 2, 3]
    # Three calls of two steps each, announced from the first step on.
    assert set(totals) == {6}


def test_auto_on_cuda_takes_what_the_free_memory_holds_and_backs_off_after_an_oom() -> None:
    free = [12 * GB]
    policy = BatchPolicy(device="cuda:0", free_memory=lambda: free[0])
    small, big = make_spec(width=512, height=512), make_spec(width=1024, height=1024)
    assert policy.size_for(small) == AUTO_CAP
    assert policy.size_for(big) == 2
    free[0] = GB // 2
    assert policy.size_for(small) == 1  # never less than one
    free[0] = 12 * GB
    assert policy.back_off(big, 2) is True
    assert policy.size_for(big) == 1  # remembered for that size...
    assert policy.size_for(small) == AUTO_CAP  # ...and only for it
    assert policy.back_off(big, 1) is False  # one picture that does not fit: a real error


def test_a_fixed_max_batch_is_kept_and_never_backs_off() -> None:
    policy = batch_policy(3, "cuda")
    assert policy.size_for(make_spec(width=1024, height=1024)) == 3
    assert policy.back_off(make_spec(), 3) is False
    assert batch_policy(AUTO, "cpu").size_for(make_spec()) == 1


def test_the_scheduler_groups_one_picture_per_call_on_a_cpu_under_auto(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[engine]\ndevice = "cpu"\n')
    config = load_config(path)
    assert config.engine.max_batch == "auto"
    assert config.engine.batch_limit == 1
    assert config.engine.engine_max_batch == AUTO
    path.write_text('[engine]\ndevice = "cuda"\nmax_batch = "auto"\n')
    assert load_config(path).engine.batch_limit == AUTO_CAP
    path.write_text('[engine]\ndevice = "cpu"\nmax_batch = 3\n')
    assert load_config(path).engine.batch_limit == 3
    assert scheduler_limit(5, gpu=True) == 5


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"lots"', "[engine] max_batch: must be a whole number, or must be one of 'auto'"),
        ("0", "[engine] max_batch: must be at least 1, got 0"),
    ],
)
def test_a_bad_max_batch_is_named(tmp_path: Path, value: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[engine]\nmax_batch = {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert expected in str(caught.value)
