"""What a watcher knows about the experiments it watches: counts from the daemon, step progress from events.

Events say *that* something changed; ``experiments.get`` says *what the counts are*. Counting events instead
would double-count cells finished between subscribing and the first snapshot, and drift after dropped
events, so every job or experiment event only marks its experiment for a refresh. Step progress
(``job.progress``) is display-only, from events. Pure state with no I/O, so it is tested by feeding it dicts;
``watching.py`` draws it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cauldron_client.events import DROPPED, Event

TERMINAL_STATUSES = frozenset({"done", "failed", "cancelled"})
UNFINISHED_STATUSES = frozenset({"queued", "running"})
_JOB_END_EVENTS = frozenset({"job.done", "job.failed", "job.cancelled", "job.requeued"})
_EXPERIMENT_EVENTS = frozenset({"experiment.finished", "experiment.cancelled", "experiment.priority"})

# Exit codes of `cauldronctl watch` and of `--watch` (documented in clients/README.md, "Exit codes").
EXIT_DONE = 0  # every watched cell finished
EXIT_FAILED = 1  # at least one cell failed
EXIT_CANCELLED = 3  # an experiment was cancelled (takes precedence over failed cells)
EXIT_INTERRUPTED = 130  # Ctrl-C: watching stopped, the experiments keep running (128 + SIGINT, as shells do)


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

    def summary(self) -> str:
        """``experiment 12 (foxes) was cancelled: 3 done, 197 cancelled`` — what happened, in one line."""
        label = f"experiment {self.id}" + (f" ({self.name})" if self.name else "")
        counts = ", ".join(f"{self.count(k)} {k}" for k in ("done", "failed", "cancelled") if self.count(k))
        if self.status == "cancelled":
            verb = "was cancelled"
        elif self.status == "failed" or self.count("failed"):
            verb = "failed" if self.status == "failed" else "finished with failures"
        else:
            verb = "finished" if self.status == "done" else self.status
        return f"{label} {verb}: {counts or 'no cells'}"


@dataclass
class StepState:
    job_id: int
    step: int
    total: int


class Progress:
    """The watched experiments' counts and the latest denoising step."""

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
        states = self.experiments.values()
        if any(s.status == "cancelled" for s in states):
            return EXIT_CANCELLED
        if self.failed > 0 or any(s.status == "failed" for s in states):
            return EXIT_FAILED
        return EXIT_DONE

    def current_step(self) -> StepState | None:
        if self.all_finished:
            return None
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

    # -- text -----------------------------------------------------------------------------------------------

    def cells_text(self) -> str:
        text = f"{self.settled}/{self.total} cells"
        return text + (f" ({self.failed} failed)" if self.failed else "")

    def step_text(self) -> str:
        step = self.current_step()
        return f"step {step.step}/{step.total}" if step is not None and step.total else ""

    def rate_text(self) -> str:
        rate = self.rate()
        return f"{rate:.2f} img/s" if rate is not None else "-- img/s"

    def eta_text(self) -> str:
        eta = self.eta_s()
        return "ETA " + (format_duration(eta) if eta is not None else "--")

    def line(self) -> str:
        """The whole state as one plain line, for logs and pipes."""
        parts = [self.cells_text(), self.step_text(), self.rate_text(), self.eta_text()]
        return " | ".join(part for part in parts if part)


def format_duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
