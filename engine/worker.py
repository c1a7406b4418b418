"""The engine process: owns the GPU and serves `EngineClient` over a pipe.

`EngineClient` starts it as its own process (`engine/process.py`); what they say to each
other is in engine/messages.py. This module imports torch only inside `main` (through
`engine.pipelines`).

Three threads run here: the main thread denoises requests one at a time; a reader
thread keeps receiving from the pipe, so a `Cancel` reaches a running job and
`Health` is answered while a picture is being painted; and a replier thread sends
each request's reply, in order, once its pictures are finished (safety check and
PNG, on the finisher thread of engine/encoding.py) — by then the main thread is
denoising the next request.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from engine.batching import BatchPolicy, OutOfMemory, batch_policy
from engine.download import DownloadProgress, reporting
from engine.logs import configure_logging
from engine.messages import (
    STARTUP_REQUEST,
    UNEXPECTED_ERROR,
    Cancel,
    Configure,
    Done,
    Downloading,
    Failed,
    Generate,
    Health,
    LoadModel,
    Preview,
    Progress,
    Reply,
    Shutdown,
    Work,
    error_name,
)
from engine.threads import apply_threads
from engine.types import (
    CancelCheck,
    EngineError,
    EngineSettings,
    GeneratedImage,
    GenerationCancelled,
    ImageSpec,
    ProgressCallback,
)

if TYPE_CHECKING:
    from engine.pipelines import Engine
    from engine.previews import Previewer

log = logging.getLogger("atelier.engine.worker")

# Seconds between progress messages while a job runs (see _JobProgress).
PROGRESS_INTERVAL = 0.25


def main(fd: int) -> None:
    """Entry point of the engine process (`python -m engine FD`): FD is its end of the
    pipe, and the first message on it says how to run."""
    # Ctrl-C in a terminal reaches the whole process group; the bot decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    try:
        configure = conn.recv()
    except (EOFError, OSError):
        os._exit(0)  # the bot went away before saying anything
    assert isinstance(configure, Configure), configure
    _configure_logging(configure.log_level)
    EngineWorker(conn, configure.max_batch).serve(configure.settings)
    # Nothing is left to save, and the interpreter's orderly teardown of torch and the
    # model takes a second or more that a closing bot or a CLI run would wait for.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _configure_logging(level: int) -> None:
    configure_logging(level, process="engine")
    quiet = "error" if level >= logging.ERROR else "warning"
    os.environ.setdefault("DIFFUSERS_VERBOSITY", quiet)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", quiet)
    # Turns off transformers' and the hub's progress bars too.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if level >= logging.ERROR:
        warnings.simplefilter("ignore")


class EngineWorker:
    def __init__(self, conn: Connection, max_batch: int) -> None:
        self._conn = conn
        self._max_batch = max_batch  # engine.batching.AUTO: decided per size
        self._batching = BatchPolicy(fixed=max(1, max_batch))  # set for the device at start
        self._inbox: queue.Queue[Work | Shutdown] = queue.Queue()
        self._send_lock = threading.Lock()
        self._cancel_lock = threading.Lock()
        self._cancelled: set[str] = set()
        # Set when the client is gone or asked us to stop: the running job stops early.
        self._stopping = threading.Event()
        self._engine: Engine | None = None
        self._running_job: str | None = None
        # (what the client asked for, the display name it got) for the loaded model.
        self._loaded: tuple[str, str] | None = None
        self._threads = 0  # torch's thread count, once set ([engine] threads)
        self._imports_s: float | None = None  # start-up time, until it has been logged
        # (request id, what collects its reply value, the model loaded after it), in
        # order; None: stop. See _reply.
        self._replies: queue.Queue[tuple[int, Callable[[], object], str | None] | None] = (
            queue.Queue()
        )
        self._preview_every = 0.0  # [engine] preview_every

    def serve(self, settings: EngineSettings) -> None:
        threading.Thread(target=self._read, name="engine-pipe-reader", daemon=True).start()
        started = time.perf_counter()
        try:
            from diffusers.utils import logging as diffusers_logging
            from tqdm import tqdm

            from engine.pipelines import Engine

            # The bot shows its own progress; diffusers' bars would only clutter its log.
            diffusers_logging.disable_progress_bar()
            # tqdm's default lock is a multiprocessing semaphore, which would start a
            # resource-tracker process and be reported as leaked by our quick exit.
            tqdm.set_lock(threading.RLock())
            self._imports_s = time.perf_counter() - started
            self._engine = Engine(settings)
            self._threads = apply_threads(settings.threads, self._engine.device)
            self._batching = batch_policy(
                self._max_batch, self._engine.device, self._engine.dtype.itemsize
            )
            self._preview_every = settings.preview_every
        except Exception as exc:
            self._fail(STARTUP_REQUEST, exc)
            return
        log.info(
            "engine ready on %s with %d torch threads (torch and diffusers imported in %.1f s)",
            self._engine.device,
            self._threads,
            self._imports_s,
        )
        self._send(Done(STARTUP_REQUEST, self._engine.device, None))
        replier = threading.Thread(target=self._reply, name="engine-replier", daemon=True)
        replier.start()
        while True:
            request = self._inbox.get()
            if isinstance(request, Shutdown):
                # Pictures still being finished go out before we stop.
                self._replies.put(None)
                replier.join()
                return
            try:
                collect = self._handle(request)
            except Exception as exc:
                collect = _raising(exc)
            self._replies.put((request.request_id, collect, self._model_name()))

    def _reply(self) -> None:
        """Replier thread: each request's reply, in order, once its pictures are
        finished; the main thread meanwhile denoises the next request."""
        while (item := self._replies.get()) is not None:
            request_id, collect, model = item
            try:
                value = collect()
            except Exception as exc:
                self._fail(request_id, exc, model)
            else:
                self._send(Done(request_id, value, model))

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                message = Shutdown()
            if isinstance(message, Cancel):
                with self._cancel_lock:
                    self._cancelled.add(message.job_id)
            elif isinstance(message, Health):
                self._send(Done(message.request_id, self._health(), self._model_name()))
            else:
                self._inbox.put(message)
            if isinstance(message, Shutdown):
                self._stopping.set()
                return

    def _handle(self, request: Work) -> Callable[[], object]:
        """Do the request's work on the engine; returns what collects its reply value."""
        if isinstance(request, LoadModel):
            display = self._load(request.name_or_path, request.request_id)
            return lambda: display
        self._running_job = request.job_id
        try:
            return self._generate(request)
        finally:
            self._running_job = None
            # Cleared before the reply goes out: a cancel for the client's next job can
            # only arrive after it has seen this reply.
            with self._cancel_lock:
                self._cancelled.clear()

    def _load(self, name_or_path: str, request_id: int) -> str:
        assert self._engine is not None
        started = time.perf_counter()

        def report(progress: DownloadProgress) -> None:
            self._send(Downloading(request_id, progress))

        with reporting(report):
            display = self._engine.load(name_or_path)
        self._loaded = (name_or_path, display)
        if self._imports_s is not None:
            # Once per process: what a restart after a crash costs the waiting users.
            log.info(
                "engine start-up: imports %.1f s, first model load %.1f s (%s)",
                self._imports_s,
                time.perf_counter() - started,
                display,
            )
            self._imports_s = None
        return display

    def _generate(self, request: Generate) -> Callable[[], list[GeneratedImage]]:
        assert self._engine is not None
        if self._loaded != (request.model, self._engine.model_name):
            self._load(request.model, request.request_id)

        from engine.previews import Previewer  # torch: loaded in the engine process only

        def should_cancel() -> bool:
            return request.job_id in self._cancelled or self._stopping.is_set()

        return start_job(
            self._engine,
            request.specs,
            self._batching,
            lambda step, total: self._send(Progress(request.request_id, step, total)),
            should_cancel,
            previews=Previewer(
                self._preview_every,
                lambda pictures: self._send(Preview(request.request_id, pictures)),
            ),
        )

    def _health(self) -> dict[str, object]:
        engine = self._engine
        return {
            "alive": True,
            "model": engine.model_name if engine else None,
            "device": engine.device if engine else None,
            "busy": self._running_job,
            "threads": self._threads,
            "duty": engine.duty.reading() if engine else None,
        }

    def _model_name(self) -> str | None:
        return self._engine.model_name if self._engine else None

    def _fail(self, request_id: int, exc: Exception, model: str | None = None) -> None:
        if isinstance(exc, EngineError):
            message = str(exc) or UNEXPECTED_ERROR
        else:
            log.exception("request %s failed", request_id, exc_info=exc)
            message = UNEXPECTED_ERROR
        self._send(Failed(request_id, error_name(exc), message, model or self._model_name()))

    def _send(self, reply: Reply) -> None:
        try:
            with self._send_lock:
                self._conn.send(reply)
        except OSError:
            # The client is gone; the reader thread sees EOF and stops us.
            self._stopping.set()


def generate_job(
    engine: Engine,
    specs: list[ImageSpec],
    batching: int | BatchPolicy,
    report: ProgressCallback,
    should_cancel: CancelCheck,
    *,
    previews: Previewer | None = None,
) -> list[GeneratedImage]:
    """One job on a loaded engine, as the engine process and every Ray replica run it."""
    return start_job(engine, specs, batching, report, should_cancel, previews=previews)()


def start_job(
    engine: Engine,
    specs: list[ImageSpec],
    batching: int | BatchPolicy,
    report: ProgressCallback,
    should_cancel: CancelCheck,
    *,
    previews: Previewer | None = None,
) -> Callable[[], list[GeneratedImage]]:
    """Denoise one job's pictures now; the returned call waits for their PNGs, which
    are finished beside the next chunk's (or the next job's) denoising."""
    if should_cancel():
        raise GenerationCancelled("cancelled")
    policy = BatchPolicy(fixed=max(1, batching)) if isinstance(batching, int) else batching
    progress = _JobProgress(report)
    pending = []
    position = 0
    while position < len(specs):
        # At most this many pictures per pipeline call: more may not fit in memory.
        size = policy.size_for(specs[position])
        chunk = specs[position : position + size]
        remaining = math.ceil((len(specs) - position - len(chunk)) / size)
        on_step = progress.chunk(remaining=remaining)
        if previews is not None:
            previews.offset = position  # indices in the whole job, not the chunk
        try:
            pending.append(
                engine.start(chunk, on_step=on_step, should_cancel=should_cancel, previews=previews)
            )
        except OutOfMemory:
            if not policy.back_off(chunk[0], len(chunk)):
                raise
            continue  # the same pictures again, in smaller batches
        position += len(chunk)
    return lambda: [image for part in pending for image in part.result()]


def _raising(exc: Exception) -> Callable[[], object]:
    def collect() -> object:
        raise exc

    return collect


class _JobProgress:
    """Progress over the chunks of one job: never runs backwards, never floods the pipe.

    Each chunk's total is known only once it starts; later chunks are assumed to be as
    long as the current one (they are, unless specs differ in steps or strength).
    The first and last steps are always reported, others at most every
    PROGRESS_INTERVAL: chats show a few updates a second at most, and every message
    wakes the bot process, which on a busy CPU takes time from the engine.
    """

    def __init__(self, report: ProgressCallback) -> None:
        self._report = report
        self._done = 0  # steps finished so far, over all chunks
        self._last_report = -math.inf

    def chunk(self, *, remaining: int) -> ProgressCallback:
        start = self._done

        def on_step(step: int, total: int) -> None:
            self._done = start + step
            job_total = start + total * (1 + remaining)
            now = time.monotonic()
            if self._done in (1, job_total) or now - self._last_report >= PROGRESS_INTERVAL:
                self._last_report = now
                self._report(self._done, job_total)

        return on_step
