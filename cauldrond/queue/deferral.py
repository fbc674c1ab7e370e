"""Where the crash guard parks a suspect after it crashed the daemon while running alone: out of the queue's
lanes, so the rest of the queue keeps moving, until enough other batches have started and its time has come.

Both conditions matter. Counting batches guarantees other work runs between two tries of a suspect; the time
(jittered by whoever computed it) keeps a suspect out of a window that repeats after every restart, such as a
watchdog or an OOM killer that strikes a fixed time after the daemon starts.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cauldrond.queue.job_queue import QueuedJob


@dataclass
class _Parked:
    job: QueuedJob
    priority: int
    batches_left: int
    not_before: float  # epoch seconds: persisted, so it must survive a restart


class Deferral:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._parked: dict[int, _Parked] = {}
        self._clock = clock

    def __len__(self) -> int:
        return len(self._parked)

    def __iter__(self) -> Iterator[tuple[int, QueuedJob]]:
        """(priority, job) in the order they would come back."""
        for parked in sorted(self._parked.values(), key=lambda p: (p.not_before, p.batches_left, p.job.job_id)):
            yield parked.priority, parked.job

    def wants(self, job: QueuedJob) -> bool:
        return job.backoff_batches > 0 or job.not_before > self._clock()

    def park(self, job: QueuedJob, priority: int) -> None:
        self._parked[job.job_id] = _Parked(job, priority, job.backoff_batches, job.not_before)

    def priority_of(self, experiment_id: int) -> int | None:
        for parked in self._parked.values():
            if parked.job.experiment_id == experiment_id:
                return parked.priority
        return None

    def set_priority(self, experiment_id: int, priority: int) -> None:
        for parked in self._parked.values():
            if parked.job.experiment_id == experiment_id:
                parked.priority = priority

    def remove_experiment(self, experiment_id: int) -> list[QueuedJob]:
        gone = [p.job for p in self._parked.values() if p.job.experiment_id == experiment_id]
        for job in gone:
            del self._parked[job.job_id]
        return gone

    def batch_started(self) -> None:
        """Another batch was taken: one fewer to let through (the store counts the same in ``mark_running``)."""
        for parked in self._parked.values():
            parked.batches_left = max(0, parked.batches_left - 1)

    def release(self, *, nothing_else: bool) -> list[tuple[int, QueuedJob]]:
        """Take out the jobs whose wait is over. When ``nothing_else`` is queued there is no other work to let
        through, so only the time counts."""
        now = self._clock()
        due = [p for p in self._parked.values() if p.not_before <= now and (nothing_else or p.batches_left == 0)]
        for parked in due:
            del self._parked[parked.job.job_id]
        # Released jobs carry no wait any more, so putting one back (a shutdown) does not park it again.
        return [
            (p.priority, dataclasses.replace(p.job, backoff_batches=0, not_before=0.0))
            for p in sorted(due, key=lambda p: p.job.job_id)
        ]

    def seconds_until_due(self) -> float | None:
        """How long until the earliest parked job's time comes (0 if it has), None when none is parked."""
        if not self._parked:
            return None
        return max(0.0, min(p.not_before for p in self._parked.values()) - self._clock())
