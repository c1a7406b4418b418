"""The Ray backend: the engine as Ray Serve replicas, behind the same contract as the
local engine process (`engine.backend.EngineBackend`).

Each replica (`engine.ray_replica.EngineReplica`) owns `gpus_per_replica` GPUs and runs
one batch at a time (`max_ongoing_requests=1`), so `capacity` is the number of live
replicas. A batch carries its model as Serve's `multiplexed_model_id`: Serve sends it to
a replica holding that model when one is free. Every call reports the replica's state
(loaded models, loads so far), which is how `loaded_models()` knows what idle replicas
hold without asking them.

Faults: a replica that dies mid-batch fails it with `EngineCrashed` at once (Ray reports
the actor's death to the waiting stream) and Serve starts a new one; one past the job's
timeout is killed. A cluster that cannot be reached at start is one `EngineError` line;
one lost later makes `capacity` 0 while a watcher reconnects with backoff.

`engine.ray_cluster` holds the blocking calls to Ray (join or start it, deploy, look,
take down). Ray is imported there, here and in `engine.ray_replica` only;
`engine.backend` imports this module only when `[engine] backend = "ray"`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ray.exceptions import RayActorError, RayError
from ray.serve.exceptions import RayServeException, RequestCancelledError
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

from engine import types as engine_types
from engine.client import CRASH_MESSAGE, SHUTDOWN_MESSAGE
from engine.ray_cluster import POLL_INTERVAL, RayCluster, first_line, kill_actor
from engine.ray_replica import Outcome, ReplicaState, Step
from engine.types import (
    EngineCrashed,
    EngineError,
    EngineSettings,
    GeneratedImage,
    GenerationCancelled,
    ImageSpec,
    ProgressCallback,
)

log = logging.getLogger("atelier.engine.ray")

# Seconds a look at the cluster may take before the cluster counts as lost.
STATUS_TIMEOUT = 15.0
# Longest wait between two attempts to reach a lost cluster.
MAX_BACKOFF = 60.0
LOST_MESSAGE = "the Ray cluster is unreachable; your job waits until it is back"
# Ray errors that mean the call, not the job, failed: the replica or cluster is gone.
_CLUSTER_ERRORS = (RayError, RayServeException, ConnectionError)


@dataclass
class _Replica:
    state: ReplicaState
    busy: str | None = None  # the job it runs


@dataclass
class _Job:
    response: DeploymentResponseGenerator
    replica_id: str | None = None  # known once the replica has said hello


class RayEngineClient:
    def __init__(
        self,
        settings: EngineSettings,
        *,
        max_batch: int = 4,
        log_level: int = logging.WARNING,
        start_timeout: float = 600.0,
    ) -> None:
        self._options = settings.ray
        self._cluster = RayCluster(settings, max_batch=max_batch, log_level=log_level)
        self._start_timeout = start_timeout
        self._lost = False
        self._closing = False
        self._current_model: str | None = None
        self._capacity = 0
        self._listeners: list[Callable[[], None]] = []
        self._replicas: dict[str, _Replica] = {}
        self._jobs: dict[str, _Job] = {}
        self._watcher: asyncio.Task[None] | None = None

    # -- what the scheduler reads ----------------------------------------------------

    @property
    def current_model(self) -> str | None:
        return self._current_model

    @property
    def capacity(self) -> int:
        return self._capacity

    def loaded_models(self) -> set[str]:
        return {
            model
            for replica in self._replicas.values()
            if replica.busy is None
            for model in replica.state.models
        }

    def on_capacity_change(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    # -- life --------------------------------------------------------------------------

    async def start(self) -> None:
        """Reach (or start) Ray, deploy the replicas and wait until they are up."""
        self._closing = False
        try:
            async with asyncio.timeout(self._start_timeout):
                running = await asyncio.to_thread(self._cluster.connect, deploy=True)
        except BaseException as exc:
            # Nobody will call close() for a start that failed: undo it here.
            await asyncio.to_thread(self._cluster.shut_down)
            if isinstance(exc, TimeoutError):
                raise EngineError(
                    f"the Ray engine did not start within {self._start_timeout:g} s"
                ) from None
            if isinstance(exc, Exception) and not isinstance(exc, EngineError):
                raise EngineError(f"the Ray engine did not start: {first_line(exc)}") from None
            raise
        self._set_capacity(running)
        self._watcher = asyncio.get_running_loop().create_task(self._watch(), name="ray-watch")
        log.info("Ray engine ready: %d replica(s)", running)

    async def close(self) -> None:
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        for job in list(self._jobs.values()):
            job.response.cancel()
        await asyncio.to_thread(self._cluster.shut_down)
        self._replicas.clear()
        self._capacity = 0

    # -- calls -------------------------------------------------------------------------

    async def load_model(self, name_or_path: str) -> str:
        handle = self._ready_handle()
        try:
            outcome = await handle.options(multiplexed_model_id=name_or_path).load.remote()
        except _CLUSTER_ERRORS as exc:
            log.error("loading %s failed on the cluster: %s", name_or_path, first_line(exc))
            raise EngineCrashed(CRASH_MESSAGE) from None
        self._record(outcome.replica, busy=None)
        return str(self._value(outcome))

    async def generate(
        self,
        job_id: str,
        model: str,
        specs: list[ImageSpec],
        on_progress: ProgressCallback | None = None,
        *,
        timeout: float | None = None,
        on_preview: Callable[[dict[int, bytes]], None] | None = None,
    ) -> list[GeneratedImage]:
        # `on_preview`: replicas stream progress only; live previews are the local
        # backend's for now.
        if not specs:
            return []
        handle = self._ready_handle()
        request = handle.options(stream=True, multiplexed_model_id=model)
        job = _Job(request.generate.remote(job_id, list(specs)))
        self._jobs[job_id] = job
        try:
            async with asyncio.timeout(timeout):
                outcome = await self._follow(job_id, job, on_progress)
        except TimeoutError:
            job.response.cancel()
            await self._replace(job.replica_id, f"job {job_id} ran past {timeout:g} s")
            raise EngineCrashed(
                f"the engine took longer than {timeout:g} s and was restarted"
            ) from None
        except asyncio.CancelledError:
            job.response.cancel()  # our caller gave up: free the replica too
            raise
        except RequestCancelledError:
            if self._closing:
                raise EngineCrashed(SHUTDOWN_MESSAGE) from None
            raise GenerationCancelled("cancelled") from None
        except _CLUSTER_ERRORS as exc:
            if isinstance(exc, RayActorError) and job.replica_id is not None:
                self._replicas.pop(job.replica_id, None)
            log.error("job %s: the replica running it failed: %s", job_id, first_line(exc))
            raise EngineCrashed(CRASH_MESSAGE) from None
        finally:
            self._jobs.pop(job_id, None)
            replica = self._replicas.get(job.replica_id or "")
            if replica is not None and replica.busy == job_id:
                replica.busy = None
        return list(self._value(outcome))  # type: ignore[call-overload]

    async def cancel(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            # Serve cancels the call on its replica, which stops at the next step.
            job.response.cancel()

    async def health(self) -> dict[str, object]:
        """`alive`, `model`, `device`, `busy`, plus `capacity` and each known replica."""
        replicas = {
            replica_id: {
                "models": list(replica.state.models),
                "loads": replica.state.loads,
                "busy": replica.busy,
                "device": replica.state.device,
                "node": replica.state.node_id,
                "pid": replica.state.pid,
                "actor": replica.state.actor_name,
            }
            for replica_id, replica in self._replicas.items()
        }
        devices = sorted({replica.state.device for replica in self._replicas.values()})
        return {
            "alive": self._cluster.handle is not None and not self._lost and self._capacity > 0,
            "model": self._current_model,
            "device": devices[0] if devices else None,
            "busy": next(iter(self._jobs), None),
            "pid": None,
            "capacity": self._capacity,
            "replicas": replicas,
        }

    # -- inside --------------------------------------------------------------------------

    def _ready_handle(self) -> DeploymentHandle:
        if self._closing:
            raise EngineError("the engine is shutting down")
        handle = self._cluster.handle
        if handle is None:
            raise EngineError("the Ray engine is not started")
        if self._lost:
            raise EngineCrashed(LOST_MESSAGE)
        return handle

    async def _follow(
        self, job_id: str, job: _Job, on_progress: ProgressCallback | None
    ) -> Outcome:
        outcome: Outcome | None = None
        # Read to the end of the stream, not just to the outcome: only then has the
        # replica finished the call, so Serve routes the next batch for this model to it.
        async for event in job.response:
            if isinstance(event, Step):
                if on_progress is not None:
                    try:
                        on_progress(event.step, event.total)
                    except Exception:
                        log.exception("progress callback failed")
            elif isinstance(event, ReplicaState):
                job.replica_id = event.replica_id
                self._record(event, busy=job_id)
            else:
                outcome = event
        if outcome is None:
            raise EngineCrashed(CRASH_MESSAGE)  # the stream ended without an outcome
        self._record(outcome.replica, busy=None)
        return outcome

    def _value(self, outcome: Outcome) -> object:
        """The outcome's value, or its error raised again as the same engine.types class."""
        if outcome.error:
            error = getattr(engine_types, outcome.error, EngineError)
            if not (isinstance(error, type) and issubclass(error, EngineError)):
                error = EngineError
            raise error(outcome.message)
        self._current_model = outcome.model
        return outcome.value

    def _record(self, state: ReplicaState, *, busy: str | None) -> None:
        self._replicas[state.replica_id] = _Replica(state, busy)

    async def _replace(self, replica_id: str | None, reason: str) -> None:
        """Kill a hung replica's actor; Serve starts a new replica in its place."""
        replica = self._replicas.pop(replica_id or "", None)
        if replica is None:
            return  # the call never reached a replica; cancelling it was enough
        log.error("%s: killing replica %s; Serve starts another", reason, replica_id)
        try:
            await asyncio.to_thread(kill_actor, replica.state.actor_name)
        except Exception as exc:
            log.warning("could not kill replica %s: %s", replica_id, first_line(exc))

    def _set_capacity(self, capacity: int) -> None:
        if capacity == self._capacity:
            return
        self._capacity = capacity
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:
                log.exception("capacity listener failed")

    def _capacity_for(self, running: int) -> int:
        """Live replicas; with autoscaling, one more below the maximum: a batch waiting
        in Serve's queue is what tells Serve to add a replica."""
        if self._options.min_replicas < self._options.max_replicas:
            return min(running + 1, self._options.max_replicas)
        return running

    async def _watch(self) -> None:
        """Keep `capacity` and the replica list current; reconnect with backoff."""
        delay = POLL_INTERVAL
        while True:
            await asyncio.sleep(delay)
            known = {rid: replica.state.actor_name for rid, replica in self._replicas.items()}
            try:
                async with asyncio.timeout(STATUS_TIMEOUT):
                    running, gone = await asyncio.to_thread(self._cluster.survey, self._lost, known)
            except Exception as exc:
                if not self._lost:
                    log.error(
                        "cannot reach Ray Serve (%s); jobs wait while it is tried again",
                        first_line(exc),
                    )
                    self._lost = True
                self._set_capacity(0)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            if self._lost:
                log.warning("Ray Serve is back: %d replica(s)", running)
                self._lost = False
            delay = POLL_INTERVAL
            for replica_id in gone:
                self._replicas.pop(replica_id, None)
            self._set_capacity(self._capacity_for(running))
