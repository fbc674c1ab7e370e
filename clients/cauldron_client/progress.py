"""Watching experiments: live progress from events, with counts that always come from the daemon.

Events say *that* something changed; ``experiments.get`` says *what the counts are*. Counting events instead
would double-count cells finished between subscribing and the first snapshot, and drift after dropped
events, so every job or experiment event only marks its experiment for a (throttled) refresh, and a slow
poll catches anything the events missed. Step progress (``job.progress``) is display-only, from events.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from cauldron_client.client import Client
from cauldron_client.events import DROPPED, Event

TERMINAL_STATUSES = frozenset({"done", "failed", "cancelled"})
UNFINISHED_STATUSES = frozenset({"queued", "running"})
REFRESH_MIN_INTERVAL_S = 0.25  # at most four experiments.get per experiment and second while images pour in
POLL_INTERVAL_S = 5.0  # the safety net for missed events
_JOB_END_EVENTS = frozenset({"job.done", "job.failed", "job.cancelled", "job.requeued"})
_EXPERIMENT_EVENTS = frozenset({"experiment.finished", "experiment.cancelled", "experiment.priority"})


@dataclass
class ExperimentState:
    id: int
    name: str = ""
    status: str = "queued"
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def count(self, key: str) -> int:
        value = self.counts.get(key, 0)
        return value if isinstance(value, int) else 0

    @property
    def settled(self) -> int:
        return self.count("done") + self.count("failed") + self.count("cancelled")


@dataclass
class StepState:
    job_id: int
    step: int
    total: int


class Progress:
    """What the watcher knows; pure state with no I/O, so it can be tested by feeding it dicts."""

    def __init__(self, experiment_ids: Iterable[int], clock: Callable[[], float] = time.monotonic) -> None:
        self.experiments = {eid: ExperimentState(eid) for eid in experiment_ids}
        self._clock = clock
        self.started_at = clock()
        self._baseline: int | None = None  # cells already settled at the first snapshot
        self._steps: dict[int, StepState] = {}
        self._latest_job: int | None = None

    def update_experiment(self, experiment: Mapping[str, Any]) -> None:
        """Take the counts and status of an ``<experiment>`` map from the daemon."""
        state = self.experiments.get(int(experiment["id"]))
        if state is None:
            return
        state.name = str(experiment.get("name") or "")
        state.status = str(experiment.get("status", state.status))
        counts = experiment.get("counts")
        if isinstance(counts, Mapping):
            state.counts = {str(k): v for k, v in counts.items() if isinstance(v, int)}

    def mark_baseline(self) -> None:
        if self._baseline is None:
            self._baseline = self.settled

    def apply_event(self, event: Event) -> set[int]:
        """Record ``event``; returns the watched experiments whose counts it may have changed."""
        kind = event.get("type")
        if kind == DROPPED:
            return {eid for eid, state in self.experiments.items() if not state.finished}
        experiment_id = event.get("experiment_id")
        if experiment_id not in self.experiments:
            return set()
        job_id = event.get("job_id")
        if kind == "job.started" and isinstance(job_id, int):
            for jid in event.get("batch") or [job_id]:
                if isinstance(jid, int):
                    self._steps.setdefault(jid, StepState(jid, 0, 0))
            self._latest_job = job_id
            return {experiment_id}
        if kind == "job.progress" and isinstance(job_id, int):
            step, total = event.get("step"), event.get("total")
            if isinstance(step, int) and isinstance(total, int):
                self._steps[job_id] = StepState(job_id, step, total)
                self._latest_job = job_id
            return set()
        if kind in _JOB_END_EVENTS:
            if isinstance(job_id, int):
                self._steps.pop(job_id, None)
            return {experiment_id}
        if kind in _EXPERIMENT_EVENTS:
            return {experiment_id}
        return set()

    # -- derived figures ------------------------------------------------------------------------------------

    def _sum(self, key: str) -> int:
        return sum(state.count(key) for state in self.experiments.values())

    @property
    def total(self) -> int:
        return self._sum("total")

    @property
    def failed(self) -> int:
        return self._sum("failed")

    @property
    def settled(self) -> int:
        return sum(state.settled for state in self.experiments.values())

    @property
    def all_finished(self) -> bool:
        return all(state.finished for state in self.experiments.values())

    @property
    def exit_code(self) -> int:
        failed = self.failed > 0 or any(s.status == "failed" for s in self.experiments.values())
        return 1 if failed else 0

    def current_step(self) -> StepState | None:
        if self._latest_job in self._steps:
            return self._steps[self._latest_job]
        return next(iter(self._steps.values()), None)

    def rate(self) -> float | None:
        """Cells settled per second since the watch began; None until one has."""
        if self._baseline is None:
            return None
        elapsed = self._clock() - self.started_at
        finished_here = self.settled - self._baseline
        if finished_here <= 0 or elapsed <= 0:
            return None
        return finished_here / elapsed

    def eta_s(self) -> float | None:
        rate = self.rate()
        if rate is None:
            return None
        return max(0, self.total - self.settled) / rate

    def line(self, bar_width: int = 0) -> str:
        total, settled = self.total, self.settled
        parts = [f"{settled}/{total} cells"]
        if bar_width > 0:
            filled = round(bar_width * settled / total) if total else 0
            parts[0] = "[" + "#" * filled + "." * (bar_width - filled) + "] " + parts[0]
        if self.failed:
            parts[0] += f" ({self.failed} failed)"
        step = None if self.all_finished else self.current_step()
        if step is not None and step.total:
            parts.append(f"job {step.job_id} step {step.step}/{step.total}")
        rate = self.rate()
        parts.append(f"{rate:.2f} img/s" if rate is not None else "-- img/s")
        eta = self.eta_s()
        parts.append("ETA " + (format_duration(eta) if eta is not None else "--"))
        return " | ".join(parts)


def format_duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class Display:
    """Redraws one line on a terminal; on a pipe or log file prints a line now and then instead."""

    def __init__(self, stream: TextIO, tty: bool | None = None, line_interval_s: float = 10.0) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.line_interval_s = line_interval_s
        self._last_draw = float("-inf")
        self._last_text = ""

    def render(self, progress: Progress, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            if force or now - self._last_draw >= 0.1:
                self.stream.write("\r" + progress.line(bar_width=24) + "\x1b[K")
                self.stream.flush()
                self._last_draw = now
            return
        text = progress.line()
        if force or (text != self._last_text and now - self._last_draw >= self.line_interval_s):
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last_draw, self._last_text = now, text

    def message(self, text: str) -> None:
        """A line that stays (an experiment finished), printed above the live line."""
        self.stream.write(("\r\x1b[K" if self.tty else "") + text + "\n")
        self.stream.flush()
        self._last_draw = float("-inf")

    def close(self, progress: Progress) -> None:
        self.render(progress, force=self.tty or progress.line() != self._last_text)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


async def unfinished_experiments(client: Client, page: int = 100) -> list[int]:
    """Ids of every queued or running experiment, oldest first."""
    ids: list[int] = []
    offset = 0
    while True:
        result = await client.call("experiments.list", limit=page, offset=offset)
        batch = result.get("experiments", [])
        ids.extend(int(e["id"]) for e in batch if e.get("status") in UNFINISHED_STATUSES)
        if len(batch) < page:
            return sorted(set(ids))
        offset += page


async def watch(
    client: Client,
    experiment_ids: Iterable[int] | None = None,
    *,
    stream: TextIO | None = None,
    tty: bool | None = None,
    line_interval_s: float = 10.0,
    on_event: Callable[[Event], None] | None = None,
) -> Progress:
    """Show progress until every watched experiment (default: all unfinished ones) has finished."""
    display = Display(stream if stream is not None else sys.stderr, tty, line_interval_s)
    async with client.events() as events:  # subscribed before the snapshot, so no change slips between
        ids = list(experiment_ids) if experiment_ids is not None else await unfinished_experiments(client)
        progress = Progress(ids)
        if not ids:
            return progress
        for eid in ids:
            await _refresh(client, progress, eid, display)
        progress.mark_baseline()
        dirty: set[int] = set()
        last_refresh = last_poll = time.monotonic()
        try:
            while not progress.all_finished:
                event = await events.next(max_wait=0.1 if display.tty else 1.0)
                if event is not None:
                    if on_event is not None:
                        on_event(event)
                    dirty |= progress.apply_event(event)
                now = time.monotonic()
                if now - last_poll >= POLL_INTERVAL_S:
                    dirty |= {eid for eid, s in progress.experiments.items() if not s.finished}
                    last_poll = now
                if dirty and now - last_refresh >= REFRESH_MIN_INTERVAL_S:
                    for eid in sorted(dirty):
                        await _refresh(client, progress, eid, display)
                    dirty.clear()
                    last_refresh = now
                display.render(progress)
        finally:
            display.close(progress)
    return progress


async def _refresh(client: Client, progress: Progress, experiment_id: int, display: Display) -> None:
    state = progress.experiments[experiment_id]
    was_finished = state.finished
    result = await client.call("experiments.get", experiment_id=experiment_id, jobs_limit=1)
    progress.update_experiment(result["experiment"])
    if state.finished and not was_finished:
        counts = ", ".join(f"{state.count(k)} {k}" for k in ("done", "failed", "cancelled") if state.count(k))
        label = f"experiment {experiment_id}" + (f" ({state.name})" if state.name else "")
        display.message(f"{label} {state.status}: {counts or 'no cells'}")
