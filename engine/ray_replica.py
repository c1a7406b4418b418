"""One Ray Serve replica: the same `Engine` the local engine process runs, on one GPU.

Serve's model multiplexing routes a request to a replica that already holds its model
(`multiplexed_model_id` = the configured model name) and keeps at most
`max_models_per_replica` of them per replica, dropping the least recently used one.
A job is an async generator: it yields this replica's `ReplicaState`, then `Step`s,
then one `Outcome`, so progress streams back to the bot as the job runs. The job
itself runs in a thread, leaving the replica's event loop free to see a cancel.

This module is imported only where Ray is installed: by `engine.ray_client` in the
bot and inside each replica.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import ray
from ray import serve

from engine.batching import batch_policy
from engine.messages import UNEXPECTED_ERROR, error_name
from engine.types import EngineError, EngineSettings, GeneratedImage, ImageSpec
from engine.worker import generate_job

if TYPE_CHECKING:
    from engine.pipelines import Engine

log = logging.getLogger("atelier.engine.replica")


@dataclass(frozen=True)
class ReplicaState:
    """What a replica says about itself at the start and end of each call."""

    replica_id: str
    actor_name: str  # its Ray actor, in the "serve" namespace
    node_id: str
    pid: int
    device: str
    models: tuple[str, ...]  # loaded model ids, least recently used first
    loads: int  # models loaded since the replica started


@dataclass(frozen=True)
class Step:
    step: int
    total: int


@dataclass(frozen=True)
class Outcome:
    """The end of a call: a value, or an error named after its class in engine.types."""

    replica: ReplicaState
    value: object = field(default=None, repr=False)
    error: str = ""
    message: str = ""
    model: str | None = None  # display name of the model the call used


class _LoadedModel:
    """One cached model; Serve calls `__del__` when it drops it from the replica."""

    def __init__(self, engine: Engine, model_id: str, models: OrderedDict[str, None]) -> None:
        self.engine = engine
        self._model_id = model_id
        self._models = models

    def __del__(self) -> None:
        # Serve calls this itself, and Python again when the object goes.
        self._models.pop(self._model_id, None)


class EngineReplica:
    def __init__(
        self, settings: EngineSettings, max_batch: int, max_models: int, threads: int
    ) -> None:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import torch
        from diffusers.utils import logging as diffusers_logging

        from engine.pipelines import Engine

        diffusers_logging.disable_progress_bar()
        if threads > 0:
            torch.set_num_threads(threads)
        self._settings = settings
        # Resolved now: a device this node lacks fails the replica at start, not a job.
        engine = Engine(settings)
        self._device = engine.device
        self._batching = batch_policy(max_batch, self._device, engine.dtype.itemsize)
        self._models: OrderedDict[str, None] = OrderedDict()
        self._loads = 0
        # One job at a time, also while a cancelled one finishes its current step.
        self._lock = asyncio.Lock()

        # Wrapped in a plain function: Serve keeps its model cache as an attribute of
        # the function it decorates, which a bound method cannot carry.
        async def load(model_id: str) -> _LoadedModel:
            return await self._load(model_id)

        self._engine_for = serve.multiplexed(max_num_models_per_replica=max_models)(load)
        context = serve.get_replica_context()
        self._replica_id = context.replica_id.unique_id
        self._actor_name = context.replica_id.to_full_id_str()
        self._node_id = ray.get_runtime_context().get_node_id()

    async def load(self) -> Outcome:
        """Load the request's model here (if it is not loaded yet)."""
        async with self._lock:
            try:
                loaded = await self._engine_for(serve.get_multiplexed_model_id())
            except Exception as exc:
                return self._failed(exc)
            name = loaded.engine.model_name
            return Outcome(self._state(), name, model=name)

    async def generate(
        self, job_id: str, specs: list[ImageSpec], model: str = ""
    ) -> AsyncIterator[ReplicaState | Step | Outcome]:
        """`model` defaults to the request's multiplexed model id; a caller that routes
        without multiplexing (bench/scale_out.py, to compare) names it here."""
        yield self._state()
        async with self._lock:
            try:
                loaded = await self._engine_for(model or serve.get_multiplexed_model_id())
            except Exception as exc:
                yield self._failed(exc)
                return
            loop = asyncio.get_running_loop()
            steps: asyncio.Queue[Step | None] = asyncio.Queue()
            stop = threading.Event()

            def report(step: int, total: int) -> None:
                loop.call_soon_threadsafe(steps.put_nowait, Step(step, total))

            def run() -> list[GeneratedImage]:
                try:
                    return generate_job(loaded.engine, specs, self._batching, report, stop.is_set)
                finally:
                    loop.call_soon_threadsafe(steps.put_nowait, None)

            work = asyncio.ensure_future(asyncio.to_thread(run))
            try:
                while (step := await steps.get()) is not None:
                    yield step
                images = await work
            except Exception as exc:
                yield self._failed(exc)
                return
            finally:
                # Cancelled by the bot (or it went away): stop at the next step, and keep
                # the replica until the thread is done with the engine.
                stop.set()
                await asyncio.wait({work})
            yield Outcome(self._state(), images, model=loaded.engine.model_name)

    async def _load(self, model_id: str) -> _LoadedModel:
        from engine.loading import free_memory
        from engine.pipelines import Engine

        # Serve dropped the least recently used model before calling us: reclaim it.
        await asyncio.to_thread(free_memory)
        engine = Engine(self._settings)
        await asyncio.to_thread(engine.load, model_id)
        self._loads += 1
        self._models[model_id] = None
        log.info("replica %s loaded %s (%d loads)", self._replica_id, model_id, self._loads)
        return _LoadedModel(engine, model_id, self._models)

    def _state(self) -> ReplicaState:
        model_id = serve.get_multiplexed_model_id()
        if model_id in self._models:
            self._models.move_to_end(model_id)
        return ReplicaState(
            replica_id=self._replica_id,
            actor_name=self._actor_name,
            node_id=self._node_id,
            pid=os.getpid(),
            device=self._device,
            models=tuple(self._models),
            loads=self._loads,
        )

    def _failed(self, exc: Exception) -> Outcome:
        if isinstance(exc, EngineError):
            message = str(exc) or UNEXPECTED_ERROR
        else:
            log.exception("replica %s: the call failed", self._replica_id)
            message = UNEXPECTED_ERROR
        return Outcome(self._state(), error=error_name(exc), message=message)
