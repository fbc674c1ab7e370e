from cauldrond.queue import JobQueue, QueuedJob
from cauldrond.queue.batching import batch_key


def job(job_id: int, experiment_id: int, idx: int, **params: object) -> QueuedJob:
    return QueuedJob(job_id, experiment_id, idx, {"prompt": "p", "steps": 2, **params})


def drain(queue: JobQueue) -> list[int]:
    taken = []
    while batch := queue.take_batch(1):
        taken.extend(j.job_id for j in batch)
    return taken


def test_higher_priority_first_and_fifo_inside_an_experiment() -> None:
    queue = JobQueue()
    for i in range(3):
        queue.add(job(i, 1, i), priority=0)
    for i in range(3):
        queue.add(job(10 + i, 2, i), priority=5)
    assert drain(queue) == [10, 11, 12, 0, 1, 2]


def test_round_robin_between_experiments_of_equal_priority() -> None:
    queue = JobQueue()
    for i in range(100):
        queue.add(job(i, 1, i), priority=0)  # the big one
    for i in range(2):
        queue.add(job(1000 + i, 2, i), priority=0)  # the small one, queued later
    taken = drain(queue)
    # The small experiment is done within its first four turns, not after 100 cells.
    assert taken.index(1001) < 4
    assert len(taken) == 102 and sorted(taken) == sorted(set(taken))


def test_ordered_matches_take_order() -> None:
    queue = JobQueue()
    for i in range(4):
        queue.add(job(i, 1, i), priority=0)
    for i in range(2):
        queue.add(job(10 + i, 2, i), priority=0)
    queue.add(job(20, 3, 0), priority=9)
    predicted = [j.job_id for _, j in queue.ordered()]
    assert predicted == drain(queue)


def test_set_priority_moves_queued_jobs() -> None:
    queue = JobQueue()
    queue.add(job(1, 1, 0), priority=0)
    queue.add(job(2, 2, 0), priority=0)
    queue.set_priority(2, 3)
    assert queue.priority_of(2) == 3
    assert drain(queue) == [2, 1]


def test_pause_blocks_taking_and_resume_restores() -> None:
    queue = JobQueue()
    queue.add(job(1, 1, 0), priority=0)
    queue.pause()
    assert queue.take_batch(4) == []
    queue.resume()
    assert [j.job_id for j in queue.take_batch(4)] == [1]


def test_remove_experiment_and_requeue_front() -> None:
    queue = JobQueue()
    for i in range(3):
        queue.add(job(i, 1, i), priority=0)
    queue.add(job(9, 2, 0), priority=0)
    first = queue.take_batch(1)
    assert [j.job_id for j in queue.remove_experiment(1)] == [1, 2]
    queue.requeue_front(first, priority=0)
    assert drain(queue) == [9, 0]


def test_batches_join_only_adjacent_jobs_with_the_same_key() -> None:
    queue = JobQueue()
    queue.add(job(1, 1, 0, seed=1), priority=0)
    queue.add(job(2, 1, 1, seed=2), priority=0)
    queue.add(job(3, 1, 2, seed=3, steps=9), priority=0)
    queue.add(job(4, 1, 3, seed=4), priority=0)
    assert [j.job_id for j in queue.take_batch(8, batch_key)] == [1, 2]
    assert [j.job_id for j in queue.take_batch(8, batch_key)] == [3]
    assert [j.job_id for j in queue.take_batch(8, batch_key)] == [4]
    assert len(queue) == 0


def test_the_loaded_model_is_preferred_within_a_priority_but_not_forever() -> None:
    queue = JobQueue()
    for i in range(20):
        queue.add(job(i, 1, i, model="a"), priority=0)
    for i in range(20):
        queue.add(job(100 + i, 2, i, model="b"), priority=0)
    taken = []
    while batch := queue.take_batch(1, prefer_model="b"):
        taken.append(batch[0].job_id)
    # Experiment 1 (model a) had the first turn but yields to the loaded model b ... a bounded number of times.
    first_a = next(i for i, job_id in enumerate(taken) if job_id < 100)
    assert first_a == 8
    assert sorted(taken) == sorted([*range(20), *range(100, 120)])


def test_model_preference_never_crosses_priorities() -> None:
    queue = JobQueue()
    queue.add(job(1, 1, 0, model="a"), priority=5)
    queue.add(job(2, 2, 0, model="b"), priority=0)
    assert [j.job_id for j in queue.take_batch(1, prefer_model="b")] == [1]
