"""Priority queue of image jobs: higher priority first, FIFO inside an experiment, and round-robin between
experiments that share a priority, so a 20-cell experiment is not stuck behind a 2,000-cell one.

The queue holds no state the store lacks: every job here is ``queued`` in SQLite, and the queue is rebuilt from
there at start. Callers commit to the store first, then update the queue.

Crash guard: a *suspect* (a job that was running when the daemon died) always runs in a batch of its own, and a
suspect with a backoff waits in a ``Deferral`` outside the lanes (see docs/architecture.md, Durability).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from cauldrond.params import GenerationParams
from cauldrond.queue.deferral import Deferral

# How many turns in a row an experiment may yield to others that can reuse the loaded model.
MAX_PASSED_OVER = 8


@dataclass(frozen=True)
class QueuedJob:
    job_id: int
    experiment_id: int
    idx: int
    params: dict[str, Any]
    suspect: bool = False  # was running when the daemon died: runs alone until it finishes
    strikes: int = 0  # daemon deaths while it ran alone with its own work begun
    backoff_batches: int = 0  # other batches to let start before it runs again
    not_before: float = 0.0  # epoch seconds before which it does not run again
    # The params as validated when the experiment was created, carried to the provider; None for a job read
    # back from the store (a restart, a retry), whose stored params the engine validates when it runs.
    generation: GenerationParams | None = None


class _QueuedRow(Protocol):
    """What ``queued_job`` reads (the store's ``QueuedJobRow``, without importing the store)."""

    @property
    def job_id(self) -> int: ...

    @property
    def experiment_id(self) -> int: ...

    @property
    def idx(self) -> int: ...

    @property
    def params(self) -> dict[str, Any]: ...

    @property
    def suspect(self) -> bool: ...

    @property
    def strikes(self) -> int: ...

    @property
    def backoff_batches(self) -> int: ...

    @property
    def not_before(self) -> float: ...


def queued_job(row: _QueuedRow) -> QueuedJob:
    """The queue's job for a queued row of the store (``QueuedJobRow``), crash-guard state included."""
    return QueuedJob(
        row.job_id,
        row.experiment_id,
        row.idx,
        row.params,
        row.suspect,
        row.strikes,
        row.backoff_batches,
        row.not_before,
    )


class _ExperimentLane:
    """The queued jobs of one experiment, in index order."""

    __slots__ = ("experiment_id", "jobs", "passed_over", "priority")

    def __init__(self, experiment_id: int, priority: int) -> None:
        self.experiment_id = experiment_id
        self.priority = priority
        self.jobs: deque[QueuedJob] = deque()
        self.passed_over = 0  # turns given to another experiment because it could reuse the loaded model


class JobQueue:
    def __init__(self, deferral: Deferral | None = None) -> None:
        self._deferral = deferral if deferral is not None else Deferral()
        self._lanes: dict[int, _ExperimentLane] = {}
        # priority -> experiments in their round-robin turn order (front runs next).
        self._rotations: dict[int, OrderedDict[int, None]] = {}
        self._paused = False
        self._changed = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []

    # -- inspection ---------------------------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    def __len__(self) -> int:
        return sum(len(lane.jobs) for lane in self._lanes.values()) + len(self._deferral)

    def priority_of(self, experiment_id: int) -> int | None:
        lane = self._lanes.get(experiment_id)
        return lane.priority if lane else self._deferral.priority_of(experiment_id)

    def ordered(self) -> Iterator[tuple[int, QueuedJob]]:
        """Jobs with their priority in the order they would run if nothing changed. O(n); for listings."""
        for priority in sorted(self._rotations, reverse=True):
            lanes = [self._lanes[eid] for eid in self._rotations[priority]]
            cursors = [0] * len(lanes)
            remaining = sum(len(lane.jobs) for lane in lanes)
            while remaining:
                for i, lane in enumerate(lanes):
                    if cursors[i] < len(lane.jobs):
                        yield priority, lane.jobs[cursors[i]]
                        cursors[i] += 1
                        remaining -= 1
        yield from self._deferral

    # -- mutation -----------------------------------------------------------------------------------------------

    def add(self, job: QueuedJob, priority: int) -> None:
        if self._deferral.wants(job):
            self._deferral.park(job, priority)
            self._notify()
            return
        lane = self._lanes.get(job.experiment_id)
        if lane is None:
            lane = _ExperimentLane(job.experiment_id, priority)
            self._lanes[job.experiment_id] = lane
            self._rotations.setdefault(priority, OrderedDict())[job.experiment_id] = None
        lane.jobs.append(job)
        self._notify()

    def requeue_front(self, jobs: list[QueuedJob], priority: int) -> None:
        """Put jobs that were taken but not finished back at the head of their experiment (a struck suspect, whose
        worker died under it, waits in the deferral instead)."""
        for job in sorted(jobs, key=lambda j: j.idx, reverse=True):
            lane = self._lanes.get(job.experiment_id)
            if lane is None or self._deferral.wants(job):
                self.add(job, priority)
            else:
                lane.jobs.appendleft(job)
        self._notify()

    def set_priority(self, experiment_id: int, priority: int) -> None:
        self._deferral.set_priority(experiment_id, priority)
        lane = self._lanes.get(experiment_id)
        if lane is None or lane.priority == priority:
            return
        self._detach(lane)
        lane.priority = priority
        self._rotations.setdefault(priority, OrderedDict())[experiment_id] = None
        self._notify()

    def remove_experiment(self, experiment_id: int) -> list[QueuedJob]:
        parked = self._deferral.remove_experiment(experiment_id)
        lane = self._lanes.pop(experiment_id, None)
        if lane is None:
            return parked
        self._detach(lane)
        self._notify()
        return [*lane.jobs, *parked]

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        self._notify()

    def take_batch(
        self,
        max_size: int | Callable[[QueuedJob], int],
        batch_key: Callable[[QueuedJob], Hashable] | None = None,
        prefer_model: str | None = None,
    ) -> list[QueuedJob]:
        """Pop the next job and, when ``batch_key`` is given, the jobs right behind it in the same experiment
        that share its key, up to ``max_size`` in all (a function of the first job: the engine's measured size,
        engine/batch_sizing.py). Only adjacent jobs join, so taking a batch is O(batch); the
        planner orders an experiment's cells so that batchable ones are adjacent. A suspect runs alone and joins
        no batch. Empty when paused or idle."""
        if self._paused:
            return []
        for priority, job in self._deferral.release(nothing_else=not self._rotations):
            self.requeue_front([job], priority)
        if not self._rotations:
            return []
        top = max(self._rotations)
        rotation = self._rotations[top]
        lane = self._choose_lane(rotation, prefer_model)
        experiment_id = lane.experiment_id
        batch = [lane.jobs.popleft()]
        if callable(max_size):
            max_size = max_size(batch[0])
        if batch_key is not None and max_size > 1 and not batch[0].suspect:
            key = batch_key(batch[0])
            while lane.jobs and len(batch) < max_size and not lane.jobs[0].suspect and batch_key(lane.jobs[0]) == key:
                batch.append(lane.jobs.popleft())
        self._deferral.batch_started()
        # Round-robin: this experiment's next turn comes after every other experiment of its priority.
        rotation.move_to_end(experiment_id)
        if not lane.jobs:
            del self._lanes[experiment_id]
            self._detach(lane)
        return batch

    def _choose_lane(self, rotation: OrderedDict[int, None], prefer_model: str | None) -> _ExperimentLane:
        """The experiment whose turn it is, unless another of the same priority can reuse the loaded model: a
        model load costs seconds to minutes, so it wins, but only MAX_PASSED_OVER times in a row per experiment."""
        first = self._lanes[next(iter(rotation))]
        if prefer_model is None or first.jobs[0].params.get("model") == prefer_model:
            return first
        if first.passed_over < MAX_PASSED_OVER:
            for experiment_id in rotation:
                lane = self._lanes[experiment_id]
                if lane.jobs[0].params.get("model") == prefer_model:
                    first.passed_over += 1
                    return lane
        first.passed_over = 0
        return first

    async def wait_for_work(self) -> None:
        """Return once a batch can be taken (not paused and not empty). With only parked suspects queued, that is
        when the first one's time comes."""
        while self._paused or not self._rotations:
            self._changed.clear()
            wait = None if self._paused else self._deferral.seconds_until_due()
            if wait == 0.0:
                return
            try:
                await asyncio.wait_for(self._changed.wait(), wait)
            except TimeoutError:
                return

    def wake(self) -> None:
        self._notify()

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the loop, at once) whenever work arrives, comes back or changes priority: the Ray
        dispatcher wakes on it rather than at its next tick."""
        self._listeners.append(callback)

    def top_priority(self) -> int | None:
        """The highest priority with work ready to take (parked suspects aside), or None."""
        return max(self._rotations) if self._rotations else None

    def _notify(self) -> None:
        self._changed.set()
        for callback in self._listeners:
            callback()

    def _detach(self, lane: _ExperimentLane) -> None:
        rotation = self._rotations.get(lane.priority)
        if rotation is not None:
            rotation.pop(lane.experiment_id, None)
            if not rotation:
                del self._rotations[lane.priority]
