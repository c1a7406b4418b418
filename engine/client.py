"""The bot's side of the engine process: spawn it, talk to it, restart it when it dies.

This module never imports torch: the bot process stays small and starts fast, and a
CUDA crash or an out-of-memory kill takes down only the engine process. A reader
thread per engine process receives replies and hands them to the event loop, so
waiting on the pipe never blocks the loop, and the process's death is seen at once
(EOF on the pipe, or the process's exit), not after a timeout.

The process itself (start, send, stop) is `engine.process.RunningEngine`; the requests
waiting on its replies are `engine.requests.PendingRequests`; what they say is
engine/messages.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import cast

from engine.download import DownloadCallback, DownloadProgress
from engine.messages import (
    STARTUP_REQUEST,
    Cancel,
    Done,
    Failed,
    Generate,
    Health,
    LoadModel,
    Reply,
    Shutdown,
    reply_value,
)
from engine.process import RunningEngine, start_engine_process
from engine.requests import Pending, PendingRequests
from engine.types import (
    EngineCrashed,
    EngineError,
    EngineSettings,
    GeneratedImage,
    ImageSpec,
    PreviewCallback,
    ProgressCallback,
)

log = logging.getLogger("atelier.engine.client")

CRASH_MESSAGE = "the engine stopped unexpectedly; your job will be retried"
SHUTDOWN_MESSAGE = "the engine was shut down during the job"
# Seconds a health check waits for the engine process to answer.
HEALTH_TIMEOUT = 10.0


class EngineClient:
    def __init__(
        self,
        settings: EngineSettings,
        *,
        max_batch: int = 4,
        log_level: int = logging.WARNING,
        start_timeout: float = 600.0,
    ) -> None:
        self._settings = settings
        self._max_batch = max_batch
        self._log_level = log_level
        self._start_timeout = start_timeout
        # Serialises start, load and generate: the engine runs one job at a time.
        self._lock = asyncio.Lock()
        self._engine: RunningEngine | None = None
        # Replies from an older process (one that died or was replaced) are ignored.
        self._generation = 0
        self._requests = PendingRequests()
        self._request_ids = itertools.count(STARTUP_REQUEST + 1)
        self._current_model: str | None = None
        self._running_job: str | None = None
        self._restart_task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def current_model(self) -> str | None:
        """Display name of the loaded model; after a crash, the one loaded again next."""
        return self._current_model

    @property
    def downloading(self) -> DownloadProgress | None:
        """The download of the model being loaded, while there is one."""
        return self._requests.downloads.current

    def on_download(self, callback: DownloadCallback) -> None:
        """Call `callback` on the loop with each download report, and None at its end."""
        self._requests.downloads.callbacks.append(callback)

    async def start(self) -> None:
        """Spawn the engine process and wait until it is ready (torch import: seconds)."""
        async with self._lock:
            self._closing = False
            await self._ensure_running()

    async def close(self) -> None:
        self._closing = True
        if self._restart_task is not None:
            self._restart_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._restart_task
            self._restart_task = None
        engine, self._engine = self._engine, None
        self._generation += 1
        self._requests.fail_all(EngineCrashed(SHUTDOWN_MESSAGE))
        if engine is not None:
            with contextlib.suppress(OSError):
                engine.send(Shutdown())
            await asyncio.to_thread(engine.stop)

    async def load_model(self, name_or_path: str) -> str:
        """Load a model (the engine frees the old one first); returns its display name."""
        async with self._lock:
            await self._ensure_running()
            reply = await self._call(LoadModel(next(self._request_ids), name_or_path))
            self._current_model = reply.model
            return cast(str, reply_value(reply))

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
        """One picture per spec, in order; loads `model` first when it is not loaded.

        `timeout` (seconds): past it the engine counts as hung; it is killed and
        restarted, and the call raises `EngineCrashed`.
        """
        if not specs:
            return []
        async with self._lock:
            await self._ensure_running()
            request = Generate(next(self._request_ids), job_id, model, list(specs))
            self._running_job = job_id
            try:
                reply = await self._call(request, on_progress, timeout, on_preview)
            except TimeoutError:
                self._kill(f"job {job_id} ran past {timeout:g} s")
                raise EngineCrashed(
                    f"the engine took longer than {timeout:g} s and was restarted"
                ) from None
            except asyncio.CancelledError:
                # Our caller gave up; stop the work too, or the next job waits behind it.
                self._send_cancel(job_id)
                raise
            finally:
                self._running_job = None
            self._current_model = reply.model
            return cast(list[GeneratedImage], reply_value(reply))

    async def cancel(self, job_id: str) -> None:
        """Stop the running job `job_id` (it raises `GenerationCancelled`); else nothing."""
        if job_id == self._running_job:
            self._send_cancel(job_id)

    async def health(self) -> dict[str, object]:
        """`alive`, `model`, `device`, `busy` (running job id) and `pid`; answered mid-job."""
        engine = self._engine
        if engine is None or not engine.ready:
            return {"alive": False, "model": None, "device": None, "busy": None, "pid": None}
        try:
            reply = await self._call(Health(next(self._request_ids)), timeout=HEALTH_TIMEOUT)
            answer = cast(dict[str, object], reply_value(reply))
        except (TimeoutError, EngineError):
            return {"alive": False, "model": None, "device": None, "busy": None, "pid": None}
        return {**answer, "pid": engine.process.pid}

    # -- the process ---------------------------------------------------------------

    async def _ensure_running(self) -> None:
        engine = self._engine
        if engine is not None and engine.ready:
            return
        if self._closing:
            raise EngineError("the engine is shutting down")
        if engine is not None:
            # Died, and its exit may not have been reported yet: fail what waits on it.
            self._engine = None
            self._generation += 1
            self._requests.fail_all(EngineCrashed(CRASH_MESSAGE))
            await asyncio.to_thread(engine.stop)
            log.warning(
                "engine process %s ended with exit code %s; starting a new one",
                engine.process.pid,
                engine.process.exitcode,
            )
        await self._spawn()

    async def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        process, ours = await asyncio.to_thread(
            start_engine_process, self._settings, self._max_batch, self._log_level
        )
        self._generation += 1
        reader = threading.Thread(
            target=self._read,
            args=(ours, process.sentinel, self._generation, loop),
            name="engine-client-reader",
            daemon=True,
        )
        engine = RunningEngine(process, ours, reader, threading.Lock())
        self._engine = engine
        ready = loop.create_future()
        self._requests.add(STARTUP_REQUEST, Pending(ready))
        reader.start()
        if self._closing:
            self._requests.fail_all(EngineError("the engine is shutting down"))
        try:
            async with asyncio.timeout(self._start_timeout):
                reply = await ready
            engine.device = cast(str, reply_value(reply))
        except BaseException as exc:
            if self._engine is engine:
                self._engine = None
                self._generation += 1
            self._requests.fail_all(EngineCrashed(CRASH_MESSAGE))
            engine.process.kill()
            await asyncio.to_thread(engine.stop)
            if isinstance(exc, TimeoutError):
                raise EngineError(
                    f"the engine did not start within {self._start_timeout:g} s"
                ) from None
            raise
        log.info("engine process %s ready on %s", process.pid, engine.device)

    def _kill(self, reason: str) -> None:
        """Kill a hung engine process; the next call (or the restart task) replaces it."""
        engine = self._engine
        if engine is None or engine.exited:
            return
        log.error(
            "%s: killing engine process %s and starting a new one", reason, engine.process.pid
        )
        engine.exited = True
        engine.process.kill()
        self._schedule_restart()

    def _schedule_restart(self) -> None:
        if not self._closing and (self._restart_task is None or self._restart_task.done()):
            self._restart_task = asyncio.get_running_loop().create_task(self._restart())

    def _read(
        self,
        conn: Connection,
        sentinel: int | None,
        generation: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Reader thread: hand every reply to the loop, then report the process's end."""
        try:
            while True:
                waitables: list[Connection | int] = [conn]
                if sentinel is not None:
                    waitables.append(sentinel)
                if conn not in wait(waitables):
                    break  # exited, and nothing is left to read
                try:
                    reply = conn.recv()
                except (EOFError, OSError):
                    break
                except Exception:  # a message that does not unpickle; the next ones may
                    log.exception("unreadable message from the engine process")
                    continue
                loop.call_soon_threadsafe(self._on_reply, generation, reply)
            loop.call_soon_threadsafe(self._on_exit, generation)
        except RuntimeError:
            pass  # the event loop is closed: nobody waits for replies any more

    def _on_reply(self, generation: int, reply: Reply) -> None:
        if generation == self._generation:
            self._requests.on_reply(reply)

    def _on_exit(self, generation: int) -> None:
        engine = self._engine
        if generation != self._generation or engine is None:
            return
        if engine.device is None:
            engine.exited = True
            self._requests.fail_all(EngineCrashed("the engine process stopped while starting"))
            return
        self._requests.fail_all(EngineCrashed(CRASH_MESSAGE))
        if not engine.exited:  # else we killed it ourselves, and said so
            engine.exited = True
            log.error("engine process %s stopped unexpectedly; restarting it", engine.process.pid)
            self._schedule_restart()

    async def _restart(self) -> None:
        """Start a fresh process now, so the next job does not pay for the torch import."""
        try:
            async with self._lock:
                if not self._closing:
                    await self._ensure_running()
        except Exception:
            log.exception("restarting the engine process failed; the next job tries again")

    # -- requests ------------------------------------------------------------------

    async def _call(
        self,
        request: LoadModel | Generate | Health,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
        on_preview: PreviewCallback | None = None,
    ) -> Done | Failed:
        engine = self._engine
        if engine is None:
            raise EngineCrashed(CRASH_MESSAGE)
        future: asyncio.Future[Done | Failed] = asyncio.get_running_loop().create_future()
        pending = Pending(future, on_progress, timeout, on_preview=on_preview)
        self._requests.add(request.request_id, pending)
        try:
            try:
                # Off the loop: a request carrying pictures can fill the pipe's buffer.
                await asyncio.to_thread(engine.send, request)
            except OSError:
                raise EngineCrashed(CRASH_MESSAGE) from None
            async with asyncio.timeout(timeout) as pending.deadline:
                return await future
        finally:
            self._requests.finish(request.request_id)

    def _send_cancel(self, job_id: str) -> None:
        engine = self._engine
        if engine is not None and engine.ready:
            with contextlib.suppress(OSError):
                engine.send(Cancel(job_id))

    # -- for the scheduler (engine.backend.EngineBackend) --------------------------

    @property
    def capacity(self) -> int:
        """One engine process runs one batch at a time."""
        return 1

    def loaded_models(self) -> set[str]:
        """The loaded model, while the engine process is up and idle."""
        engine = self._engine
        if engine is None or not engine.ready or self._running_job or not self._current_model:
            return set()
        return {self._current_model}

    def on_capacity_change(self, callback: Callable[[], None]) -> None:
        """Capacity is always 1 here, so `callback` is never called."""
