"""The fair queue's invariants hold after any sequence of operations.

A reference model (one list per user, in arrival order) is driven alongside the real
queue; after every step the queue must agree with it.
"""

from __future__ import annotations

import itertools

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bot.jobs.fair_queue import FairQueue
from bot.records import GenerationRequest, Job

USERS = ("ann", "bob", "cat", "dan")
MODELS = ("m1", "m2")


def make_job(job_id: str, user: str, model: str, steps: int, count: int) -> Job:
    request = GenerationRequest(
        kind="imagine",
        prompt=job_id,
        negative="",
        model=model,
        seed=0,
        steps=steps,
        cfg=7.0,
        width=64,
        height=64,
        sampler="Euler a",
        count=count,
    )
    return Job(id=job_id, platform="telegram", user_id=user, user_name=user, request=request)


def same_model(first: Job, other: Job) -> bool:
    return first.request.model == other.request.model


class FairQueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.queue = FairQueue(weight=lambda job: float(job.request.steps))
        self.waiting: dict[str, list[Job]] = {user: [] for user in USERS}
        self.ids = itertools.count()

    def all_waiting(self) -> list[Job]:
        return [job for jobs in self.waiting.values() for job in jobs]

    @rule(
        user=st.sampled_from(USERS),
        model=st.sampled_from(MODELS),
        steps=st.integers(1, 4),
        count=st.integers(1, 4),
    )
    def push(self, user: str, model: str, steps: int, count: int) -> None:
        job = make_job(f"j{next(self.ids)}", user, model, steps, count)
        self.queue.push(job)
        self.waiting[user].append(job)

    @rule(
        user=st.sampled_from(USERS),
        model=st.sampled_from(MODELS),
        count=st.integers(1, 4),
    )
    def push_front(self, user: str, model: str, count: int) -> None:
        """A job coming back after an engine crash goes first of all."""
        job = make_job(f"j{next(self.ids)}", user, model, 2, count)
        self.queue.push_front(job)
        self.waiting[user].insert(0, job)
        assert next(self.queue.order()) is job

    @precondition(lambda self: bool(self.all_waiting()))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job = data.draw(st.sampled_from(self.all_waiting()))
        assert self.queue.remove(job.id) is job
        self.waiting[job.user_key.split(":")[1]].remove(job)

    @rule(capacity=st.integers(1, 6), prefer=st.sampled_from((None, *MODELS)))
    def take_batch(self, capacity: int, prefer: str | None) -> None:
        """Like the scheduler: optionally start from the first job of a loaded model."""
        waiting = self.all_waiting()
        order = list(self.queue.order())
        first = next((job for job in order if job.request.model == prefer), None)
        batch = self.queue.take_batch(
            same_model, lambda job: job.request.count, capacity, first=first
        )
        if not waiting:
            assert batch == []
            return
        assert batch, "a waiting job must always be reachable"
        assert batch[0] is (first or order[0])
        assert all(job.request.model == batch[0].request.model for job in batch)
        assert len(batch) == 1 or sum(job.request.count for job in batch) <= capacity
        for job in batch:
            user_jobs = self.waiting[job.user_key.split(":")[1]]
            assert job in user_jobs
            user_jobs.remove(job)

    @invariant()
    def agrees_with_the_model(self) -> None:
        order = list(self.queue.order())
        assert len(self.queue) == len(order) == len(self.all_waiting())
        assert {job.id for job in order} == {job.id for job in self.all_waiting()}
        for user, jobs in self.waiting.items():
            # Each user's jobs are served in their own order.
            assert [job for job in order if job.user_id == user] == jobs
            assert self.queue.jobs_of(f"telegram:{user}") == jobs

    @invariant()
    def positions_match_the_serving_order(self) -> None:
        for index, job in enumerate(self.queue.order()):
            count, work = self.queue.ahead(job)
            assert count == index
            assert self.queue.position(job) == index + 1
            assert work >= 0

    @invariant()
    def users_take_turns(self) -> None:
        """No user has a second job ahead of another waiting user's first."""
        order = list(self.queue.order())
        users_waiting = {job.user_id for job in order}
        first_round = order[: len(users_waiting)]
        assert {job.user_id for job in first_round} == users_waiting


FairQueueMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40)
test_fair_queue_invariants = FairQueueMachine.TestCase
