"""The one contract the scheduler talks to, and the factory that picks its backend.

`local` is `engine.client.EngineClient`: one engine process spawned by the bot, one
batch at a time. `ray` is `engine.ray_client.RayEngineClient`: Ray Serve replicas,
one batch each, routed by model. Ray is imported only when `ray` is chosen, so a
single-GPU install neither needs nor loads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from engine.client import EngineClient
from engine.types import (
    EngineSettings,
    GeneratedImage,
    ImageSpec,
    PreviewCallback,
    ProgressCallback,
)


class EngineBackend(Protocol):
    @property
    def current_model(self) -> str | None:
        """Display name of the model the last load or job used."""
        ...

    @property
    def capacity(self) -> int:
        """How many `generate` calls may run at once: 1 for local, live replicas for Ray;
        0 while a Ray cluster is unreachable (jobs wait, nothing is dispatched)."""
        ...

    def loaded_models(self) -> set[str]:
        """Models (as passed to `generate`/`load_model`) loaded on an idle engine right
        now; a batch for one of them starts without a load. A routing hint only."""
        ...

    def on_capacity_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` (on the event loop) whenever `capacity` changes."""
        ...

    async def start(self) -> None:
        """Ready to serve, or `EngineError` with one line saying why not."""
        ...

    async def close(self) -> None: ...

    async def load_model(self, name_or_path: str) -> str:
        """Load a model (on one engine); its display name, or `ModelLoadError`."""
        ...

    async def generate(
        self,
        job_id: str,
        model: str,
        specs: list[ImageSpec],
        on_progress: ProgressCallback | None = None,
        *,
        timeout: float | None = None,
        on_preview: PreviewCallback | None = None,
    ) -> list[GeneratedImage]:
        """One picture per spec, in order, with (step, total) progress on the loop, and
        live previews ({picture index in the job: JPEG}) to `on_preview` where the
        backend makes them (local; Ray replicas do not send any yet).

        Raises `GenerationCancelled` after `cancel(job_id)`, `EngineCrashed` when the
        engine running it died or ran past `timeout` (it is replaced; the job may be
        retried), `EngineError` for bad input or a failed load.
        """
        ...

    async def cancel(self, job_id: str) -> None:
        """Stop the running job `job_id` within a step or two; unknown ids are ignored."""
        ...

    async def health(self) -> dict[str, object]:
        """At least `alive`, `model`, `device` and `busy` (a running job id or None)."""
        ...


def create_backend(
    settings: EngineSettings, *, max_batch: int = 4, log_level: int = logging.WARNING
) -> EngineBackend:
    """The backend `settings.backend` names, not started yet."""
    if settings.backend == "ray":
        from engine.ray_client import RayEngineClient

        return RayEngineClient(settings, max_batch=max_batch, log_level=log_level)
    return EngineClient(settings, max_batch=max_batch, log_level=log_level)
