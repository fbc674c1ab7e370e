"""The queue's side of the crash guard: suspects run alone, and a suspect with a backoff waits while the rest of
the queue moves, until enough other batches started and its time came."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from cauldrond.queue import JobQueue, QueuedJob
from cauldrond.queue.batching import batch_key
from cauldrond.queue.deferral import Deferral


class FakeClock:
    """A clock the test moves by hand (the deferral's time is epoch seconds, persisted across restarts)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def job(job_id: int, experiment_id: int, idx: int, **fields: Any) -> QueuedJob:
    return QueuedJob(job_id, experiment_id, idx, {"prompt": f"p{idx}", "steps": 2}, **fields)


def batches(queue: JobQueue, size: int = 4) -> list[list[int]]:
    taken = []
    while batch := queue.take_batch(size, batch_key):
        taken.append([j.job_id for j in batch])
    return taken


def test_suspects_run_alone_and_split_the_batches_around_them() -> None:
    queue = JobQueue()
    for i in range(8):
        queue.add(job(i, 1, i, suspect=i in (0, 1, 5)), priority=0)
    # 0 and 1 alone; 2-4 stop before the suspect 5, which runs alone; 6-7 batch again.
    assert batches(queue) == [[0], [1], [2, 3, 4], [5], [6, 7]]


def test_a_suspect_with_a_backoff_waits_for_other_batches_and_its_time() -> None:
    clock = FakeClock()
    queue = JobQueue(Deferral(clock))
    struck = job(100, 1, 0, suspect=True, strikes=1, backoff_batches=2, not_before=clock.now + 30)
    queue.add(struck, priority=0)
    for i in range(1, 13):
        queue.add(job(i, 1, i), priority=0)
    assert len(queue) == 13
    assert [j.job_id for _, j in queue.ordered()][-1] == 100, "listed last while it waits"

    assert queue.take_batch(4, batch_key) == [job(i, 1, i) for i in (1, 2, 3, 4)]
    assert [j.job_id for j in queue.take_batch(4, batch_key)] == [5, 6, 7, 8]
    # Two other batches have started, but its time has not come: the queue keeps moving without it.
    assert [j.job_id for j in queue.take_batch(4, batch_key)] == [9, 10, 11, 12]
    clock.now += 31
    queue.add(job(13, 1, 13), priority=0)
    taken = queue.take_batch(4, batch_key)
    assert [j.job_id for j in taken] == [100], "then it runs, alone"
    assert taken[0] == dataclasses.replace(struck, backoff_batches=0, not_before=0.0)
    assert [j.job_id for j in queue.take_batch(4, batch_key)] == [13]
    assert len(queue) == 0


def test_with_nothing_else_queued_only_the_time_counts() -> None:
    clock = FakeClock()
    queue = JobQueue(Deferral(clock))
    queue.add(job(1, 1, 0, suspect=True, strikes=2, backoff_batches=8, not_before=clock.now + 5), priority=0)
    assert queue.take_batch(4, batch_key) == []
    clock.now += 5
    assert [j.job_id for j in queue.take_batch(4, batch_key)] == [1]


async def test_the_engine_wakes_when_a_parked_suspects_time_comes() -> None:
    queue = JobQueue()
    queue.add(job(1, 1, 0, suspect=True, strikes=1, not_before=time.time() + 0.3), priority=0)
    assert queue.take_batch(4, batch_key) == [], "not yet"
    # No add() or wake() follows: only the deferral's own timer can end this wait.
    await asyncio.wait_for(queue.wait_for_work(), timeout=10)
    assert [j.job_id for j in queue.take_batch(4, batch_key)] == [1]


def test_cancelling_an_experiment_removes_its_parked_suspects() -> None:
    clock = FakeClock()
    queue = JobQueue(Deferral(clock))
    queue.add(job(1, 1, 0, suspect=True, strikes=1, backoff_batches=3, not_before=clock.now + 60), priority=2)
    queue.add(job(2, 1, 1), priority=2)
    queue.add(job(3, 2, 0), priority=0)
    assert queue.priority_of(1) == 2
    assert sorted(j.job_id for j in queue.remove_experiment(1)) == [1, 2]
    clock.now += 60
    assert batches(queue) == [[3]]
