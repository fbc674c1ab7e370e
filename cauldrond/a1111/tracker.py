"""The A1111 requests in flight: which experiment each became, how far it is, and waiting for it to end.

A1111 works on one request at a time and its ``progress``, ``interrupt`` and ``skip`` act on that one. Here the
queue may hold many (from this API and from every other front door), so "the current request" is the oldest
A1111 request still in flight that has a job on the GPU, or else the oldest one: the next to run of those sent
through this API. Work from the CLI or the PWA is never interrupted from here.

Progress comes from a tap on the event bus, which sees every event as it is published (a tap never drops one)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from cauldrond.events import Event, EventBus
from cauldrond.store import Store

ENDED_EVENTS = frozenset({"experiment.finished", "experiment.cancelled"})
JOB_ENDED_EVENTS = frozenset({"job.done", "job.failed", "job.cancelled"})
# A safety net under the events: the experiment's row is read again at least this often while waiting.
RECHECK_S = 2.0


@dataclass
class InFlight:
    experiment_id: int
    images: int
    job_timestamp: str  # A1111's job_timestamp: when the request came in, YYYYmmddHHMMSS
    started_at: float | None = None  # monotonic, when its first job started
    ended_jobs: set[int] = field(default_factory=set)
    steps: dict[int, tuple[int, int]] = field(default_factory=dict)  # job id -> (step, total)
    running: set[int] = field(default_factory=set)
    interrupted: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def progress(self) -> float:
        partial = sum(step / total for job, (step, total) in self.steps.items() if job in self.running and total)
        return min(1.0, (len(self.ended_jobs) + partial) / self.images) if self.images else 0.0

    def eta_relative(self) -> float:
        progress = self.progress()
        if self.started_at is None or progress <= 0:
            return 0.0
        elapsed = time.monotonic() - self.started_at
        return max(0.0, elapsed / progress - elapsed)

    def sampling(self) -> tuple[int, int]:
        live = [self.steps[job] for job in self.running if job in self.steps]
        return live[0] if live else (0, 0)


class RequestTracker:
    def __init__(self, events: EventBus, store: Store) -> None:
        self._store = store
        self._in_flight: OrderedDict[int, InFlight] = OrderedDict()
        events.tap(self._observe)

    def add(self, experiment_id: int, images: int) -> InFlight:
        entry = InFlight(experiment_id, images, time.strftime("%Y%m%d%H%M%S"))
        self._in_flight[experiment_id] = entry
        return entry

    def remove(self, experiment_id: int) -> None:
        self._in_flight.pop(experiment_id, None)

    def __len__(self) -> int:
        return len(self._in_flight)

    def current(self) -> InFlight | None:
        """The request A1111 would be working on: the oldest with a job on the GPU, else the oldest."""
        for entry in self._in_flight.values():
            if entry.running:
                return entry
        return next(iter(self._in_flight.values()), None)

    async def wait_ended(self, entry: InFlight) -> None:
        """Until the experiment has no queued or running job. Bounded by the experiment itself: a cancelled or
        failed experiment ends too, and start-up recovery re-queues what a crash left running."""
        while True:
            entry.ended.clear()  # before the check: an end announced during it still wakes the wait below
            if await self._has_ended(entry.experiment_id):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry.ended.wait(), timeout=RECHECK_S)

    async def _has_ended(self, experiment_id: int) -> bool:
        row = await self._store.experiments.get(experiment_id)
        return row is None or (row.counts["queued"] == 0 and row.counts["running"] == 0)

    def _observe(self, event: Event) -> None:
        experiment_id = event.get("experiment_id")
        entry = self._in_flight.get(experiment_id) if isinstance(experiment_id, int) else None
        if entry is None:
            return
        kind = event["type"]
        job_id: Any = event.get("job_id")
        if kind == "job.started" and isinstance(job_id, int):
            entry.running.add(job_id)
            if entry.started_at is None:
                entry.started_at = time.monotonic()
        elif kind == "job.progress" and isinstance(job_id, int):
            entry.steps[job_id] = (int(event.get("step", 0)), int(event.get("total", 0)))
        elif kind in JOB_ENDED_EVENTS and isinstance(job_id, int):
            entry.running.discard(job_id)
            entry.ended_jobs.add(job_id)
        elif kind == "job.requeued" and isinstance(job_id, int):
            entry.running.discard(job_id)
        if kind in ENDED_EVENTS or kind in JOB_ENDED_EVENTS:
            entry.ended.set()
