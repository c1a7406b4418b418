"""Starting and stopping the engine process: `python -m engine`, talking over a socket pair.

Not multiprocessing's "spawn", which re-runs the caller's `__main__` module in the
child: a launcher script without an `if __name__ == "__main__":` guard would start
the bot again there. The child gets its end of the pipe as an inherited file
descriptor and its settings as the first message; nothing of the caller's script is
imported. (A forked copy of a process that holds CUDA or threads is not safe either.)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path

import engine
from engine.messages import Configure
from engine.types import EngineSettings

# Seconds the engine process gets to exit on its own before it is terminated.
STOP_GRACE = 10.0


class EngineProcess:
    """The running child: the subset of `multiprocessing.Process` the client uses."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        # A descriptor that becomes readable when the process ends, where the OS has
        # one (Linux); else the pipe's EOF alone tells.
        try:
            self.sentinel: int | None = os.pidfd_open(popen.pid)
        except (AttributeError, OSError):
            self.sentinel = None

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def exitcode(self) -> int | None:
        return self._popen.poll()

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def kill(self) -> None:
        if self.is_alive():
            self._popen.kill()

    def terminate(self) -> None:
        if self.is_alive():
            self._popen.terminate()

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)

    def close(self) -> None:
        if self.sentinel is not None:
            os.close(self.sentinel)
            self.sentinel = None


def start_engine_process(
    settings: EngineSettings, max_batch: int, log_level: int
) -> tuple[EngineProcess, Connection]:
    """Start the engine process; returns it and the bot's end of its pipe."""
    ours, theirs = Pipe(duplex=True)
    environment = dict(os.environ)
    # The same code as this process, even when it runs from a source tree.
    source_root = str(Path(engine.__file__).resolve().parent.parent)
    environment["PYTHONPATH"] = os.pathsep.join(
        [source_root, *filter(None, [environment.get("PYTHONPATH")])]
    )
    try:
        popen = subprocess.Popen(
            [sys.executable, "-m", "engine", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            env=environment,
            stdin=subprocess.DEVNULL,
        )
    finally:
        # Only the child may hold its end, or its death would not show as EOF here.
        theirs.close()
    ours.send(Configure(settings, max_batch, log_level))
    return EngineProcess(popen), ours


@dataclass
class RunningEngine:
    """One engine process as the client holds it: the process, the bot's end of its
    pipe and the thread reading that."""

    process: EngineProcess
    conn: Connection
    reader: threading.Thread
    send_lock: threading.Lock
    device: str | None = None  # set once the process said it is ready
    exited: bool = False

    @property
    def ready(self) -> bool:
        return self.device is not None and not self.exited and self.process.is_alive()

    def send(self, message: object) -> None:
        with self.send_lock:
            self.conn.send(message)

    def stop(self) -> None:
        """Blocking: wait for the process to end (terminating it if it must), then tidy up."""
        self.process.join(STOP_GRACE)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        # The reader sees EOF once the process is gone; join it before closing its pipe.
        self.reader.join(5)
        self.conn.close()
        self.process.close()
