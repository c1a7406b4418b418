"""Showing a command's outcome, the same way on every platform.

An adapter describes where the answer goes (`Surface`: the chat or interaction the
command came from); `present` decides what goes there. A queued job's first status
goes through the courier, so it is ordered with everything the job shows later.
"""

from __future__ import annotations

from typing import Protocol

from bot.commands.base import DeleteResult, JobAccepted, Outcome, Reply, SendFile
from bot.delivery.courier import Courier


class Surface(Protocol):
    async def reply(self, reply: Reply) -> None:
        """Answer in place; `reply.error` or `reply.private`: only the caller sees it."""

    async def send_file(self, file: SendFile) -> None: ...

    async def delete_result(self, job_id: str) -> None:
        """Remove the result message(s) of `job_id` (the owner or an admin asked)."""


async def present(outcome: Outcome, surface: Surface, courier: Courier) -> None:
    match outcome:
        case JobAccepted(job=job, text=text):
            await courier.accepted(job, text)
        case Reply():
            await surface.reply(outcome)
        case SendFile():
            await surface.send_file(outcome)
        case DeleteResult(job_id=job_id):
            await surface.delete_result(job_id)
