from __future__ import annotations

from bot.jobs.fair_queue import FairQueue
from bot.records import GenerationRequest, Job


def job(user: str, name: str, *, steps: int = 2, count: int = 1) -> Job:
    request = GenerationRequest(
        kind="imagine",
        prompt=name,
        negative="",
        model="tiny",
        seed=0,
        steps=steps,
        cfg=7.0,
        width=64,
        height=64,
        sampler="Euler a",
        count=count,
    )
    return Job(id=name, platform="telegram", user_id=user, user_name=user, request=request)


def names(jobs: object) -> list[str]:
    return [j.id for j in jobs]  # type: ignore[attr-defined]


def same_steps(first: Job, other: Job) -> bool:
    return first.request.steps == other.request.steps


def take(queue: FairQueue, capacity: int = 1) -> list[str]:
    return names(queue.take_batch(same_steps, lambda j: j.request.count, capacity))


def test_users_take_turns_and_each_keeps_their_order() -> None:
    queue = FairQueue()
    for n in range(1, 4):
        queue.push(job("a", f"a{n}"))
    queue.push(job("b", "b1"))
    queue.push(job("b", "b2"))
    queue.push(job("c", "c1"))
    assert names(queue.order()) == ["a1", "b1", "c1", "a2", "b2", "a3"]
    assert [queue.position(queue.get(n)) for n in ("a1", "b1", "c1", "a2", "b2", "a3")] == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]
    served = [take(queue)[0] for _ in range(6)]
    assert served == ["a1", "b1", "c1", "a2", "b2", "a3"]
    assert len(queue) == 0
    assert take(queue) == []


def test_a_newcomer_goes_before_someone_already_served() -> None:
    queue = FairQueue()
    for n in range(1, 11):
        queue.push(job("a", f"a{n}"))
    assert take(queue) == ["a1"]  # a1 is running when b arrives
    queue.push(job("b", "b1"))
    assert queue.position(queue.get("b1")) == 1
    assert take(queue) == ["b1"]
    assert take(queue) == ["a2"]


def test_a_retried_job_goes_first() -> None:
    queue = FairQueue()
    queue.push(job("a", "a1"))
    queue.push(job("b", "b1"))
    (a1,) = queue.take_batch(same_steps, lambda j: 1, 1)
    queue.push_front(a1)
    assert names(queue.order()) == ["a1", "b1"]


def test_batches_take_compatible_jobs_in_turn_up_to_the_capacity() -> None:
    queue = FairQueue()
    queue.push(job("a", "a1"))
    queue.push(job("a", "a2"))
    queue.push(job("a", "a3"))
    queue.push(job("b", "b1", steps=9))
    queue.push(job("c", "c1", count=2))
    queue.push(job("c", "c2", count=2))
    # Serving order a1 b1 c1 a2 c2 a3: b1 does not fit, c1 fills up to 3 of 4, a2 to 4.
    assert take(queue, capacity=4) == ["a1", "c1", "a2"]
    # b1 was passed over, so it goes next, before a and c who were just served.
    assert names(queue.order())[0] == "b1"
    assert take(queue, capacity=4) == ["b1"]
    # c was served before a's second job, so c comes first now.
    assert take(queue, capacity=4) == ["c2", "a3"]


def test_a_job_larger_than_the_capacity_still_runs_alone() -> None:
    queue = FairQueue()
    queue.push(job("a", "a1", count=4))
    queue.push(job("b", "b1"))
    assert take(queue, capacity=2) == ["a1"]


def test_removing_jobs_updates_positions_and_work_ahead() -> None:
    queue = FairQueue(weight=lambda j: float(j.request.count))
    queue.push(job("a", "a1", count=2))
    queue.push(job("a", "a2", count=3))
    queue.push(job("b", "b1"))
    queue.push(job("b", "b2", count=4))
    # Order a1 b1 a2 b2.
    assert queue.ahead(queue.get("b2")) == (3, 6.0)
    assert queue.ahead(queue.get("a2")) == (2, 3.0)
    assert queue.ahead(queue.get("a1")) == (0, 0.0)
    assert queue.remove("a1") is not None
    assert queue.remove("a1") is None
    # Order a2 b1 b2.
    assert names(queue.order()) == ["a2", "b1", "b2"]
    assert queue.ahead(queue.get("b2")) == (2, 4.0)
    assert queue.remove("a2") is not None
    assert queue.jobs_of("telegram:a") == []
    assert names(queue.order()) == ["b1", "b2"]
    assert queue.position(queue.get("b2")) == 2


def test_ahead_agrees_with_the_serving_order() -> None:
    queue = FairQueue(weight=lambda j: float(j.request.steps))
    steps = iter(range(1, 100))
    for user, how_many in (("a", 5), ("b", 1), ("c", 3), ("d", 2)):
        for n in range(how_many):
            queue.push(job(user, f"{user}{n}", steps=next(steps)))
    take(queue)  # one served: the rotation has moved on
    queue.push(job("e", "e0", steps=50))
    work = 0.0
    for count, each in enumerate(queue.order()):
        assert queue.ahead(each) == (count, work)
        work += each.request.steps
