"""The waiting line: round-robin across users, first-in first-out for each user.

The user served least recently goes next, so someone who queues one picture behind
another user's ten waits for at most one of them. Batches are taken in the same
order, so batching never lets one user's jobs jump ahead of everyone else.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator

from bot.records import Job

# Past this many users remembered, forget those not waiting (they would go first anyway).
_MAX_REMEMBERED_USERS = 10_000


class FairQueue:
    def __init__(self, weight: Callable[[Job], float] = lambda job: 1.0) -> None:
        # How much work a job is: `ahead` sums it for ETAs.
        self._weight = weight
        self._queues: dict[str, deque[Job]] = {}
        # Per user: work of their first n waiting jobs at [n], so `ahead` needs no walk.
        self._prefix: dict[str, list[float]] = {}
        # Users with jobs waiting, least recently served first.
        self._rotation: list[str] = []
        self._by_id: dict[str, Job] = {}
        # When each user was last served (a counter); never served counts as 0.
        self._served_at: dict[str, int] = {}
        self._ticks = itertools.count(1)

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._by_id

    def get(self, job_id: str) -> Job | None:
        return self._by_id.get(job_id)

    def jobs_of(self, user_key: str) -> list[Job]:
        return list(self._queues.get(user_key, ()))

    def weight(self, job: Job) -> float:
        return self._weight(job)

    def push(self, job: Job) -> None:
        """Add `job` behind the user's other waiting jobs."""
        key = job.user_key
        self._queue_for(key).append(job)
        prefix = self._prefix[key]
        prefix.append(prefix[-1] + self._weight(job))
        self._by_id[job.id] = job

    def push_front(self, job: Job) -> None:
        """Put back a job that must run again: it goes first, before everyone."""
        key = job.user_key
        self._queue_for(key).appendleft(job)
        self._by_id[job.id] = job
        self._recount(key)
        # First in the rotation too, whether or not the user had other jobs waiting.
        self._served_at[key] = -next(self._ticks)
        self._rotation.remove(key)
        self._rotation.insert(0, key)

    def remove(self, job_id: str) -> Job | None:
        job = self._by_id.pop(job_id, None)
        if job is not None:
            key = job.user_key
            self._queues[key].remove(job)
            if self._queues[key]:
                self._recount(key)
            else:
                self._drop_user(key)
        return job

    def order(self) -> Iterator[Job]:
        """Waiting jobs in the order they will be served (before batching)."""
        queues = [self._queues[key] for key in self._rotation]
        for depth in itertools.count():
            layer = [queue[depth] for queue in queues if len(queue) > depth]
            if not layer:
                return
            yield from layer

    def ahead(self, job: Job) -> tuple[int, float]:
        """How many jobs will be served before `job`, and their work together."""
        key = job.user_key
        # By identity: comparing Job dataclasses field by field is slow.
        depth = next(i for i, queued in enumerate(self._queues[key]) if queued is job)
        # Every user's jobs shallower than `depth` go first, then, at `depth` itself,
        # those of the users ahead of `key` in the rotation.
        count, work = 0, 0.0
        before_key = True
        for other in self._rotation:
            prefix = self._prefix[other]
            length = len(prefix) - 1
            if length <= depth:
                count += length
                work += prefix[length]
            elif before_key and other != key:
                count += depth + 1
                work += prefix[depth + 1]
            else:
                count += depth
                work += prefix[depth]
            if other == key:
                before_key = False
        return count, work

    def position(self, job: Job) -> int:
        """1 for the job served next."""
        return self.ahead(job)[0] + 1

    def take_batch(
        self,
        fits_with: Callable[[Job, Job], bool],
        size: Callable[[Job], int],
        capacity: int,
        *,
        first: Job | None = None,
    ) -> list[Job]:
        """The next job (or `first`, a waiting job chosen by the caller), plus waiting
        jobs that `fits_with` it, up to `capacity` in size.

        Batch-mates are taken in serving order, so each user gets at most their fair
        share of a batch. Empty when nothing waits.
        """
        batch: list[Job] = []
        total = 0
        if first is not None:
            assert self._by_id.get(first.id) is first, "`first` must be waiting"
            batch.append(first)
            total = size(first)
        for job in self.order():
            if job is first:
                continue
            if not batch:
                batch.append(job)
                total = size(job)
            elif total + size(job) <= capacity and fits_with(batch[0], job):
                batch.append(job)
                total += size(job)
            if total >= capacity:
                break
        for job in batch:
            self._serve(job)
        return batch

    def _serve(self, job: Job) -> None:
        key = job.user_key
        self.remove(job.id)
        self._served_at[key] = next(self._ticks)
        if key in self._queues:
            # Served just now: to the back of the line.
            self._rotation.remove(key)
            self._rotation.append(key)

    def _queue_for(self, key: str) -> deque[Job]:
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            self._prefix[key] = [0.0]
            self._insert_user(key)
        return queue

    def _recount(self, key: str) -> None:
        self._prefix[key] = [0.0, *itertools.accumulate(map(self._weight, self._queues[key]))]

    def _insert_user(self, key: str) -> None:
        served_at = self._served_at.get(key, 0)
        index = len(self._rotation)
        while index > 0 and self._served_at.get(self._rotation[index - 1], 0) > served_at:
            index -= 1
        self._rotation.insert(index, key)

    def _drop_user(self, key: str) -> None:
        del self._queues[key]
        del self._prefix[key]
        self._rotation.remove(key)
        if len(self._served_at) > _MAX_REMEMBERED_USERS:
            self._served_at = {k: self._served_at.get(k, 0) for k in self._rotation}
