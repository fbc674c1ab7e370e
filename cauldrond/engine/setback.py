"""What the engine does when storage fails under a batch: put its jobs back (never fail them), pause the queue
with the reason, and resume once a real write succeeds again.

Jobs whose state could not be committed (the database is on the full disk too) stay ``running`` in SQLite and
are held here as *stranded*; they are committed back to ``queued`` (or ``cancelled``, if their experiment was
cancelled meanwhile) before any new batch starts, and only then re-enter the in-memory queue, so the queue and
the database never disagree about a job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from cauldrond.engine.storage import StorageGuard, remove_files, storage_fault
from cauldrond.engine.writing import Written
from cauldrond.events import EventBus
from cauldrond.queue import JobQueue, QueuedJob
from cauldrond.store import Store

log = logging.getLogger(__name__)


class StorageSetback:
    def __init__(self, store: Store, queue: JobQueue, events: EventBus, guard: StorageGuard) -> None:
        self._store = store
        self._queue = queue
        self._events = events
        self.guard = guard
        self.stranded: list[QueuedJob] = []

    @property
    def blocking(self) -> bool:
        """True while no batch may start: paused for storage, or jobs still to be committed back."""
        return self.guard.paused or bool(self.stranded)

    # -- pause and resume ---------------------------------------------------------------------------------------

    def pause(self, reason: str, needed_bytes: int = 0) -> None:
        if self.guard.pause(reason, needed_bytes):
            self._events.publish("queue.paused", reason=reason, cause="storage")

    def resume(self, reason: str, *, announce: bool = True) -> bool:
        """Lift the storage pause (``queue.resume``, which announces it itself, or the probe); False if there
        was none."""
        if not self.guard.clear():
            return False
        log.warning("queue resumed: %s", reason)
        if announce:
            self._events.publish("queue.resumed", reason=reason, cause="storage")
        self._queue.wake()
        return True

    async def watch(self, stopping: Callable[[], bool]) -> None:
        """While blocked: every probe interval, commit stranded jobs back, then probe the disk; return once
        work may start again (or on stop)."""
        while self.blocking and not stopping():
            await self.guard.wait(self.guard.probe_interval_s)
            if stopping():
                return
            if not await self.settle():
                # Also after queue.resume: work cannot start while jobs wait to be committed back.
                self.pause("the database does not take writes yet; jobs wait to go back to the queue")
                continue
            if self.guard.paused and await self.guard.writable():
                self.resume("the disk takes writes again")

    # -- putting jobs back --------------------------------------------------------------------------------------

    async def put_back_untouched(self, batch: Sequence[QueuedJob], reason: str, needed_bytes: int = 0) -> None:
        """A batch taken from the queue but not committed ``running`` (SQLite still says queued)."""
        self._requeue_in_memory(batch, await self._open_experiments(batch))
        self.pause(reason, needed_bytes)

    async def put_back(self, jobs: Sequence[QueuedJob], fault: str) -> None:
        """Jobs committed ``running`` whose work was lost to a storage fault: back to queued, and pause."""
        self.stranded.extend(jobs)
        await self.settle()
        # Announced once the jobs are back (or held as stranded), so whoever reacts sees a settled queue.
        self.pause(fault)

    async def settle(self) -> bool:
        """Commit the stranded jobs back to queued; True once none are left."""
        if not self.stranded:
            return True
        jobs = list(self.stranded)
        # Read before the commit, so the jobs enter the in-memory queue with no await after it.
        priorities = await self._open_experiments(jobs)
        try:
            requeued = set(await self._store.jobs.requeue([job.job_id for job in jobs], count_attempt=False))
        except Exception as exc:
            fault = storage_fault(exc)
            if fault is None:
                raise
            log.warning("%d job(s) stay running in the database until it takes writes: %s", len(jobs), fault)
            return False
        self.stranded = [job for job in self.stranded if job not in jobs]
        back = [job for job in jobs if job.job_id in requeued]
        for job in jobs:
            if job.job_id in requeued:
                self._events.publish(
                    "job.requeued", job_id=job.job_id, experiment_id=job.experiment_id, reason="storage"
                )
            else:  # its experiment was cancelled while it waited
                self._events.publish("job.cancelled", job_id=job.job_id, experiment_id=job.experiment_id)
        self._requeue_in_memory(back, priorities)
        return True

    async def _open_experiments(self, jobs: Sequence[QueuedJob]) -> dict[int, int]:
        """Priority by experiment id of the jobs' experiments that are not cancelled."""
        priorities: dict[int, int] = {}
        for experiment_id in sorted({job.experiment_id for job in jobs}):
            experiment = await self._store.experiments.get(experiment_id)
            if experiment is not None and experiment.cancelled_at is None:
                priorities[experiment_id] = experiment.priority
        return priorities

    def _requeue_in_memory(self, jobs: Sequence[QueuedJob], priorities: dict[int, int]) -> None:
        # A cancelled experiment's queued jobs were committed cancelled and left the queue: they stay out.
        for experiment_id, priority in priorities.items():
            mates = [job for job in jobs if job.experiment_id == experiment_id]
            if mates:
                self._queue.requeue_front(mates, priority)

    async def sort_uncommitted(
        self, items: Sequence[Written], images_dir: Path
    ) -> tuple[list[QueuedJob], list[tuple[QueuedJob, int]]]:
        """After a failed image commit: (jobs whose rows are not there, whose files are removed; jobs ``done``
        after all, with their image ids). A job that cannot even be read back keeps its file, since a row may
        point at it; it counts as lost (start-up recovery sweeps the file if it is an orphan)."""
        lost: list[QueuedJob] = []
        landed: list[tuple[QueuedJob, int]] = []
        files: list[Path] = []
        for item in items:
            try:
                job = await self._store.jobs.get(item.job.job_id)
            except Exception:
                log.warning("cannot read job %d back; its file stays until start-up recovery", item.job.job_id)
                lost.append(item.job)
                continue
            if job is not None and job.status == "done" and job.image_id is not None:
                landed.append((item.job, job.image_id))
            else:
                files.append(images_dir / item.image.path)
                lost.append(item.job)
        await asyncio.to_thread(remove_files, files)
        return lost, landed
