"""The pipelined engine: a batch's pictures are finished (safety check, PNG) beside
the next batch's denoising, never in its way; results still come back in order."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

import engine.finishing
import engine.worker
from engine.png import encode_png
from engine.types import GeneratedImage
from engine.worker import UNEXPECTED_ERROR, Done, Failed, Generate, Progress, generate_job
from tests.engine.helpers import ServedWorker, load_engine, make_spec, serve_worker

# Long beside a 2-step 64² denoise (tens of ms): what a batch of big PNGs costs.
SLOW_ENCODE = 2.0


class SlowEncoder:
    """encode_png, slowed down, noting when each call started and ended."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float]] = []

    def __call__(self, image: Image.Image, parameters: str) -> bytes:
        start = time.monotonic()
        time.sleep(SLOW_ENCODE)
        png = encode_png(image, parameters)
        self.calls.append((start, time.monotonic()))
        return png


@pytest.fixture
def slow_encoder(monkeypatch: pytest.MonkeyPatch) -> SlowEncoder:
    encoder = SlowEncoder()
    monkeypatch.setattr(engine.finishing, "encode_png", encoder)
    return encoder


def test_a_slow_png_of_one_batch_does_not_delay_the_next_batchs_first_step(
    tiny_model_dir: Path, slow_encoder: SlowEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load_engine("tiny", models={"tiny": str(tiny_model_dir)})
    slow_encoder.calls.clear()  # the load's own check picture
    monkeypatch.setattr(engine.worker, "PROGRESS_INTERVAL", 0.0)  # every step reported
    steps: list[tuple[float, int]] = []
    specs = [make_spec(seed=seed) for seed in (11, 12, 13)]
    # max_batch 1: three pipeline calls in one job, two steps each.
    images = generate_job(
        loaded, specs, 1, lambda step, _total: steps.append((time.monotonic(), step)), lambda: False
    )
    assert [image.seed for image in images] == [11, 12, 13]
    assert all(image.png.startswith(b"\x89PNG") for image in images)
    assert [step for _, step in steps] == [1, 2, 3, 4, 5, 6]
    second_batch_first_step = steps[2][0]
    first_batch_encoded = slow_encoder.calls[0][1]
    assert second_batch_first_step < first_batch_encoded


@pytest.fixture
def worker(tiny_model_dir: Path) -> Iterator[ServedWorker]:
    with serve_worker(tiny_model_dir) as served:
        yield served


def test_the_next_job_denoises_while_the_last_ones_png_is_encoded(
    worker: ServedWorker, slow_encoder: SlowEncoder
) -> None:
    conn, receive = worker.conn, worker.receive
    conn.send(Generate(1, "job-1", "tiny", [make_spec(seed=21)]))
    conn.send(Generate(2, "job-2", "tiny", [make_spec(seed=22)]))
    order: list[tuple[str, int]] = []
    results: dict[int, list[GeneratedImage]] = {}
    while len(results) < 2:
        reply = receive(60)
        if isinstance(reply, Progress):
            order.append(("step", reply.request_id))
        else:
            assert isinstance(reply, Done), reply
            order.append(("done", reply.request_id))
            results[reply.request_id] = reply.value  # type: ignore[assignment]
    # Job 2 painted while job 1's picture was still being encoded; replies in order.
    assert order.index(("step", 2)) < order.index(("done", 1)) < order.index(("done", 2))
    assert [image.seed for image in results[1] + results[2]] == [21, 22]


def test_a_picture_that_fails_to_encode_fails_its_job_and_the_next_one_works(
    worker: ServedWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(image: Image.Image, parameters: str) -> bytes:
        if "broken" in parameters:
            raise OSError("disk on fire")
        return encode_png(image, parameters)

    monkeypatch.setattr(engine.finishing, "encode_png", broken)
    worker.conn.send(Generate(1, "job-1", "tiny", [make_spec(prompt="broken", seed=1)]))
    worker.conn.send(Generate(2, "job-2", "tiny", [make_spec(seed=2)]))
    replies: list[object] = []
    while len(replies) < 2:
        reply = worker.receive(60)
        if not isinstance(reply, Progress):
            replies.append(reply)
    failed, done = replies
    assert isinstance(failed, Failed) and failed.request_id == 1
    assert failed.message == UNEXPECTED_ERROR  # the details go to the log, not the chat
    assert isinstance(done, Done) and done.request_id == 2
    assert [image.seed for image in done.value] == [2]  # type: ignore[attr-defined]
