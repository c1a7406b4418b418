"""The client's requests in flight: each waits on its reply from the engine process.

`EngineClient` (engine/client.py) sends a request and waits here for its `Done` or
`Failed`; meanwhile this hands the request's progress, previews and download reports
to whoever asked. Runs on the event loop only (the client's reader thread calls over).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from engine.download import Downloads
from engine.messages import Done, Downloading, Failed, Preview, Progress, Reply
from engine.types import EngineError, PreviewCallback, ProgressCallback

# The client's log: these are its requests.
log = logging.getLogger("atelier.engine.client")


@dataclass
class Pending:
    future: asyncio.Future[Done | Failed]
    on_progress: ProgressCallback | None = None
    timeout: float | None = None
    deadline: asyncio.Timeout | None = None
    on_preview: PreviewCallback | None = None


class PendingRequests:
    def __init__(self) -> None:
        self._pending: dict[int, Pending] = {}
        self.downloads = Downloads()

    def add(self, request_id: int, pending: Pending) -> None:
        self._pending[request_id] = pending

    def finish(self, request_id: int) -> None:
        """The request no longer waits (answered, failed or given up)."""
        self._pending.pop(request_id, None)
        self.downloads.request_over(request_id)

    def fail_all(self, error: EngineError) -> None:
        pending, self._pending = self._pending, {}
        for waiting in pending.values():
            if not waiting.future.done():
                waiting.future.set_exception(error)

    def on_reply(self, reply: Reply) -> None:
        if isinstance(reply, Progress):
            pending = self._pending.get(reply.request_id)
            if pending is not None and pending.on_progress is not None:
                try:
                    pending.on_progress(reply.step, reply.total)
                except Exception:
                    log.exception("progress callback failed")
            return
        if isinstance(reply, Downloading):
            self._on_download(reply)
            return
        if isinstance(reply, Preview):
            pending = self._pending.get(reply.request_id)
            if pending is not None and pending.on_preview is not None:
                try:
                    pending.on_preview(reply.pictures)
                except Exception:
                    log.exception("preview callback failed")
            return
        pending = self._pending.pop(reply.request_id, None)
        if pending is not None and not pending.future.done():
            pending.future.set_result(reply)

    def _on_download(self, reply: Downloading) -> None:
        pending = self._pending.get(reply.request_id)
        if pending is None:
            return
        deadline = pending.deadline
        if deadline is not None and pending.timeout is not None and not deadline.expired():
            # A download is not a hung engine: the job's time runs from its last report.
            deadline.reschedule(asyncio.get_running_loop().time() + pending.timeout)
        self.downloads.report(reply.request_id, reply.progress)
