"""Atelier's Serve application on a Ray cluster: join or start Ray, deploy the
replicas, look at them, take them down. Every call here blocks; `RayEngineClient`
runs them in a thread.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

import ray
from ray import serve
from ray.serve.handle import DeploymentHandle

from engine import types as engine_types
from engine.ray_replica import EngineReplica
from engine.types import EngineError, EngineSettings

APP_NAME = "atelier"
DEPLOYMENT_NAME = "engine"
# Serve's replicas are named actors in this namespace.
SERVE_NAMESPACE = "serve"
# Seconds between Serve's health checks of each replica (so a dead one is replaced
# soon), and between the client's looks at the replicas.
POLL_INTERVAL = 2.0
# Seconds to wait for a TCP answer from the cluster's address at start.
PROBE_TIMEOUT = 5.0


class RayCluster:
    def __init__(self, settings: EngineSettings, *, max_batch: int, log_level: int) -> None:
        self._settings = settings
        self._options = settings.ray
        self._max_batch = max_batch
        self._log_level = log_level
        self.handle: DeploymentHandle | None = None  # set once the app is deployed
        # Whether we started Ray (and so may shut it down or start it again).
        self._owns_ray = False

    def connect(self, *, deploy: bool) -> int:
        """Join (or start) Ray and Serve, deploy the app if asked or missing; live replicas."""
        address = self._options.address
        if not ray.is_initialized():
            if address and address != "auto":
                _probe(address)
            try:
                ray.init(
                    address=address or None,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=self._log_level,
                )
            except ConnectionError as exc:
                raise EngineError(
                    f"cannot reach the Ray cluster at {address}: {first_line(exc)}"
                ) from None
            self._owns_ray = True
        logging.getLogger("ray.serve").setLevel(max(self._log_level, logging.WARNING))
        if not address:
            self._check_resources()
        serve.start(proxy_location="Disabled")
        if deploy or APP_NAME not in serve.status().applications:
            try:
                self.handle = serve.run(self._application(), name=APP_NAME, route_prefix=None)
            except Exception:
                reason = self._deploy_failure()
                with contextlib.suppress(Exception):
                    serve.delete(APP_NAME)  # replicas that failed to start: not retried
                if reason:
                    raise EngineError(f"the Ray engine did not start: {reason}") from None
                raise
        else:
            self.handle = serve.get_app_handle(APP_NAME)
        return self._running_replicas()

    def survey(self, reconnect: bool, known: dict[str, str]) -> tuple[int, set[str]]:
        """Live replicas, and which of the `known` ones are gone."""
        if reconnect:
            if self._owns_ray and ray.is_initialized():
                ray.shutdown()
            self.connect(deploy=False)
        running = self._running_replicas()
        return running, {rid for rid, actor in known.items() if not _actor_alive(actor)}

    def _deploy_failure(self) -> str:
        """Why the replicas failed to start, as the engine said it; "" if unknown."""
        try:
            app = serve.status().applications[APP_NAME]
            message = app.deployments[DEPLOYMENT_NAME].message
        except Exception:
            return ""
        # Serve's message ends with the replica's traceback, whose last line is the error.
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        last = lines[-1] if lines else ""
        if last.startswith(f"{engine_types.__name__}."):
            return last.partition(": ")[2]  # an engine error: its message is for people
        return last

    def _running_replicas(self) -> int:
        app = serve.status().applications.get(APP_NAME)
        if app is None:
            raise EngineError(f"the Serve application {APP_NAME!r} is gone")
        deployment = app.deployments[DEPLOYMENT_NAME]
        return int(deployment.replica_states.get("RUNNING", 0))

    def _check_resources(self) -> None:
        """A local Ray cannot grow: say at once when the replicas cannot all fit."""
        options = self._options
        have = ray.cluster_resources()
        per_replica = {"GPU": options.gpus_per_replica, "CPU": options.cpus_per_replica}
        for resource, each in per_replica.items():
            needed = each * max(options.min_replicas, 1)
            if needed > have.get(resource, 0):
                raise EngineError(
                    f"[engine.ray] needs {needed:g} {resource}s for {options.min_replicas} "
                    f"replica(s); this machine has {have.get(resource, 0):g}"
                )

    def _application(self) -> Any:
        options = self._options
        deployment: dict[str, Any] = {
            "name": DEPLOYMENT_NAME,
            "max_ongoing_requests": 1,
            # A replica that cannot start (no such device, a broken install) fails the
            # same way again: one try per replica, then start() says why.
            "max_constructor_retry_count": max(1, options.max_replicas),
            "health_check_period_s": POLL_INTERVAL,
            "ray_actor_options": {
                "num_gpus": options.gpus_per_replica,
                "num_cpus": options.cpus_per_replica,
            },
            "logging_config": {
                "log_level": logging.getLevelName(self._log_level),
                "enable_access_log": False,
            },
        }
        if options.min_replicas == options.max_replicas:
            deployment["num_replicas"] = options.max_replicas
        else:
            deployment["autoscaling_config"] = {
                "min_replicas": options.min_replicas,
                "max_replicas": options.max_replicas,
                "target_ongoing_requests": 1,
            }
        # A CPU replica gets as many torch threads as Ray gave it CPUs, not every core.
        threads = max(1, int(options.cpus_per_replica)) if options.gpus_per_replica == 0 else 0
        return (
            serve.deployment(EngineReplica)
            .options(**deployment)
            .bind(self._settings, self._max_batch, options.max_models_per_replica, threads)
        )

    def shut_down(self) -> None:
        """Remove what this client deployed, and the Ray instance if it started one."""
        if self.handle is not None:
            self.handle = None
            with contextlib.suppress(Exception):
                serve.delete(APP_NAME)
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False


def _probe(address: str) -> None:
    """One clear line, in seconds, for an address nothing answers on (Ray would retry
    for minutes)."""
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host:
        host, port = hostport, "10001" if address.startswith("ray://") else "6379"
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT):
            pass
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise EngineError(f"cannot reach the Ray cluster at {address}: {reason}") from None


def _actor_alive(name: str) -> bool:
    try:
        ray.get_actor(name, namespace=SERVE_NAMESPACE)
    except ValueError:
        return False
    return True


def kill_actor(name: str) -> None:
    ray.kill(ray.get_actor(name, namespace=SERVE_NAMESPACE), no_restart=True)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
