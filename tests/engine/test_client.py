"""The engine-client contract, against both backends running the tiny model on the CPU:
`local` (EngineClient and its engine process) and `ray` (Ray Serve, two CPU replicas on
the session's local Ray instance).

One client per backend serves the whole module: starting one costs a torch import per
process. Tests that kill an engine check that the next call works on a fresh one.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from engine.backend import EngineBackend
from engine.client import EngineClient
from engine.types import (
    EngineCrashed,
    EngineError,
    EngineSettings,
    GeneratedImage,
    GenerationCancelled,
    ImageSpec,
    ModelLoadError,
)
from tests.engine.backends import Backend, started

# Far more steps than a test waits for: such a job is stopped long before it ends.
ENDLESS_STEPS = 5000


def spec(**overrides: object) -> ImageSpec:
    values: dict[str, object] = {"prompt": "a red fox", "seed": 1, "steps": 2}
    values.update(width=64, height=64)
    values.update(overrides)
    return ImageSpec(**values)  # type: ignore[arg-type]


def parameters(image: GeneratedImage) -> str:
    with Image.open(io.BytesIO(image.png)) as png:
        return png.info["parameters"]


@pytest.fixture(scope="module")
def copied_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model under another folder name: loaded by path, it shows that name."""
    target = tmp_path_factory.mktemp("paths") / "tiny-copy"
    shutil.copytree(tiny_model_dir, target)
    return target


@pytest.fixture(scope="module", params=["local", "ray"])
async def backend(request: pytest.FixtureRequest, tiny_model_dir: Path) -> AsyncIterator[Backend]:
    async with started(request.param, request, {"tiny": str(tiny_model_dir)}) as backend:
        yield backend


@pytest.fixture
def client(backend: Backend) -> EngineBackend:
    return backend.client


class ProgressLog:
    """Records progress events and says when the first one arrived."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int]] = []
        self.started = asyncio.Event()

    def __call__(self, step: int, total: int) -> None:
        self.events.append((step, total))
        self.started.set()


async def start_endless_job(client: EngineBackend, job_id: str) -> tuple[asyncio.Task, ProgressLog]:
    progress = ProgressLog()
    task = asyncio.create_task(
        client.generate(job_id, "tiny", [spec(steps=ENDLESS_STEPS)], progress)
    )
    await asyncio.wait_for(progress.started.wait(), 120)
    return task, progress


async def test_generate_returns_pngs_in_order_with_progress(client: EngineBackend) -> None:
    progress = ProgressLog()
    images = await client.generate(
        "job-progress", "tiny", [spec(steps=3, seed=5), spec(steps=3, seed=6)], progress
    )
    # The first and last steps always come; those between at most a few a second.
    assert progress.events[0] == (1, 3)
    assert progress.events[-1] == (3, 3)
    assert [step for step, _ in progress.events] == sorted({s for s, _ in progress.events})
    assert {total for _, total in progress.events} == {3}
    assert [image.seed for image in images] == [5, 6]
    with Image.open(io.BytesIO(images[0].png)) as png:
        assert png.size == (64, 64)
    assert "Seed: 5" in parameters(images[0])
    assert "Model: tiny" in parameters(images[0])
    assert client.current_model == "tiny"


async def test_concurrent_calls_each_get_their_own_pictures(client: EngineBackend) -> None:
    first, second = await asyncio.gather(
        client.generate("job-a", "tiny", [spec(seed=11)]),
        client.generate("job-b", "tiny", [spec(seed=12), spec(seed=13)]),
    )
    assert [image.seed for image in first] == [11]
    assert [image.seed for image in second] == [12, 13]


async def test_more_specs_than_max_batch_all_come_back(client: EngineBackend) -> None:
    progress = ProgressLog()
    seeds = [21, 22, 23, 24, 25]  # the client's max_batch is 4: two pipeline calls
    images = await client.generate("job-many", "tiny", [spec(seed=s) for s in seeds], progress)
    assert [image.seed for image in images] == seeds
    steps = [step for step, _ in progress.events]
    assert steps == sorted(set(steps))
    assert progress.events[0] == (1, 4)
    assert progress.events[-1] == (4, 4)


async def test_health_answers_while_a_job_runs(client: EngineBackend) -> None:
    idle = await client.health()
    assert idle["alive"] is True
    assert idle["device"] == "cpu"
    assert idle["model"] == "tiny"
    assert idle["busy"] is None

    task, _ = await start_endless_job(client, "job-busy")
    busy = await asyncio.wait_for(client.health(), 10)
    assert busy["busy"] == "job-busy"
    assert busy["pid"] == idle["pid"]
    await client.cancel("job-busy")
    with pytest.raises(GenerationCancelled):
        await task


async def test_cancel_stops_the_running_job_and_the_next_one_works(
    client: EngineBackend,
) -> None:
    # A cancel for a job that is not running is ignored, even if that id runs later.
    await client.cancel("job-later")

    task, progress = await start_endless_job(client, "job-cancelled")
    await client.cancel("job-cancelled")
    with pytest.raises(GenerationCancelled):
        await asyncio.wait_for(task, 30)
    assert progress.events[-1][0] < ENDLESS_STEPS

    images = await client.generate("job-later", "tiny", [spec(seed=3)])
    assert [image.seed for image in images] == [3]


async def test_engine_errors_come_back_as_the_same_class(client: EngineBackend) -> None:
    with pytest.raises(EngineError, match="steps must be at least 1") as caught:
        await client.generate("job-bad", "tiny", [spec(steps=0)])
    assert type(caught.value) is EngineError
    with pytest.raises(ModelLoadError, match="no-such-model"):
        await client.generate("job-no-model", "no-such-model", [spec()])
    assert client.current_model == "tiny"


async def test_model_switch_by_name_and_by_path(
    client: EngineBackend, copied_model_dir: Path
) -> None:
    assert await client.load_model(str(copied_model_dir)) == "tiny-copy"
    assert client.current_model == "tiny-copy"
    (image,) = await client.generate("job-path", str(copied_model_dir), [spec()])
    assert "Model: tiny-copy" in parameters(image)

    with pytest.raises(ModelLoadError, match="no-such-model"):
        await client.load_model("no-such-model")
    assert client.current_model == "tiny-copy"
    assert (await client.health())["model"] == "tiny-copy"

    assert await client.load_model("tiny") == "tiny"
    assert client.current_model == "tiny"
    # generate loads the model it is given when another one is loaded.
    (image,) = await client.generate("job-switch", str(copied_model_dir), [spec()])
    assert "Model: tiny-copy" in parameters(image)
    (image,) = await client.generate("job-back", "tiny", [spec()])
    assert "Model: tiny" in parameters(image)
    assert client.current_model == "tiny"


async def test_same_seed_gives_the_same_picture(client: EngineBackend) -> None:
    # On Ray the two calls may run on different replicas: the pictures still match.
    first, second = await asyncio.gather(
        client.generate("job-seed-1", "tiny", [spec(seed=77)]),
        client.generate("job-seed-2", "tiny", [spec(seed=77)]),
    )
    (other,) = await client.generate("job-seed-3", "tiny", [spec(seed=78)])
    assert first[0].png == second[0].png
    assert other.png != first[0].png


async def test_killed_engine_fails_the_job_and_the_next_job_works(backend: Backend) -> None:
    client = backend.client
    task, _ = await start_endless_job(client, "job-killed")
    engine = await backend.engine_of("job-killed")
    await backend.kill(engine)
    with pytest.raises(EngineCrashed, match="stopped unexpectedly"):
        await asyncio.wait_for(task, 15)

    # A fresh engine (a new process, or another replica) loads the model for the next job.
    (image,) = await client.generate("job-after-crash", "tiny", [spec(seed=4)])
    assert "Seed: 4" in parameters(image)
    assert (await client.health())["alive"] is True
    assert await backend.is_gone(engine)
    assert client.current_model == "tiny"


async def test_hung_job_past_its_timeout_restarts_the_engine(backend: Backend) -> None:
    client = backend.client
    task = asyncio.create_task(
        client.generate("job-slow", "tiny", [spec(steps=ENDLESS_STEPS)], timeout=3)
    )
    engine = await backend.engine_of("job-slow")
    with pytest.raises(EngineCrashed, match="took longer than 3 s"):
        await task
    (image,) = await client.generate("job-after-timeout", "tiny", [spec(seed=9)])
    assert image.seed == 9
    assert await backend.is_gone(engine)


async def test_start_fails_with_the_engine_message_for_a_bad_device() -> None:
    engine = EngineClient(EngineSettings(device="tpu"))
    try:
        with pytest.raises(EngineError, match="unknown device"):
            await engine.start()
        assert (await engine.health())["alive"] is False
    finally:
        await engine.close()


def test_client_does_not_import_torch() -> None:
    code = "import sys, engine.client; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
