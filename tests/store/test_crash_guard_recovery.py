"""Start-up recovery's crash guard on a real database: what a death of the process means for each job that was
running, by the rules in docs/architecture.md (Durability). Expected values are worked out by hand from those
rules, step by step."""

from __future__ import annotations

import time
from pathlib import Path

from cauldrond.events import EventBus
from cauldrond.store import RecoveryReport, Store, recover
from cauldrond.store.jobs import InterruptedJob
from cauldrond.store.recovery import BACKOFF_BATCHES, JITTER, announce, judge

BACKOFF_S = 10.0


async def cells(store: Store, count: int) -> list[int]:
    _experiment, job_ids = await store.experiments.create(
        name="x", kind="grid", spec={}, priority=0, cells=[{"prompt": f"cell {i}"} for i in range(count)]
    )
    return job_ids


async def die(store: Store, tmp_path: Path, running: list[int], *, at_work: int | None = None) -> RecoveryReport:
    """The process dies while ``running`` run (``at_work`` had its evidence committed), then starts again."""
    await store.jobs.mark_running(running)
    if at_work is not None:
        assert await store.jobs.mark_at_work_alone(at_work)
    return await recover(store, tmp_path / "images", 3, BACKOFF_S)


async def test_deaths_without_evidence_never_fail_a_job(store: Store, tmp_path: Path) -> None:
    batch = await cells(store, 4)
    report = await die(store, tmp_path, batch)
    assert (report.requeued, report.suspects, report.strikes, report.quarantined) == (batch, batch, [], [])
    # Twenty more deaths, each while a suspect runs alone but before its own work began (a model load).
    for _death in range(20):
        report = await die(store, tmp_path, [batch[0]])
        assert (report.requeued, report.suspects, report.strikes, report.quarantined) == ([batch[0]], [], [], [])
    job = await store.jobs.get(batch[0])
    assert job is not None and (job.status, job.suspect, job.strikes, job.attempts) == ("queued", True, 0, 21)
    queued = {row.job_id: row for row in await store.jobs.queued()}
    assert queued[batch[0]].backoff_batches == 1, "a suspect that died before its work lets one batch pass"
    assert [queued[j].suspect for j in batch] == [True] * 4


async def test_three_deaths_at_work_alone_quarantine_the_job(store: Store, tmp_path: Path) -> None:
    poison, bystander = await cells(store, 2)
    await die(store, tmp_path, [poison, bystander])  # in a batch: suspects, no strike
    errors = []
    for strike in (1, 2):
        report = await die(store, tmp_path, [poison], at_work=poison)
        assert (report.requeued, report.strikes, report.quarantined) == ([poison], [poison], [])
        job = await store.jobs.get(poison)
        assert job is not None and (job.status, job.strikes) == ("queued", strike)
        errors.append(job.last_error)
        (row,) = [row for row in await store.jobs.queued() if row.job_id == poison]
        assert row.backoff_batches == BACKOFF_BATCHES * 2 ** (strike - 1)
    assert errors == [
        "crashed the daemon while running alone (1 of 3); waiting before another try",
        "crashed the daemon while running alone (2 of 3); waiting before another try",
    ]
    report = await die(store, tmp_path, [poison], at_work=poison)
    assert (report.requeued, report.strikes, report.quarantined) == ([], [], [poison])
    job = await store.jobs.get(poison)
    assert job is not None
    assert (job.status, job.strikes, job.last_error) == ("failed", 3, "crashed the daemon 3 times while running alone")
    assert [row.job_id for row in await store.jobs.queued()] == [bystander]
    other = await store.jobs.get(bystander)
    assert other is not None and (other.status, other.strikes) == ("queued", 0)

    events = EventBus()
    await announce(report, store, events)
    late = events.subscribe()  # subscribes after the start-up: still told
    first, second = await late.get(), await late.get()
    assert (first["type"], first["job_id"], first["strikes"]) == ("job.quarantined", poison, 3)
    assert (second["type"], second["job_id"], second["error"]) == ("job.failed", poison, job.last_error)


async def test_a_clean_shutdown_clears_the_evidence(store: Store, tmp_path: Path) -> None:
    (job_id,) = await cells(store, 1)
    await die(store, tmp_path, [job_id])
    await store.jobs.mark_running([job_id])
    assert await store.jobs.mark_at_work_alone(job_id)
    assert await store.jobs.clear_at_work() == 1  # what Engine.stop does first
    report = await recover(store, tmp_path / "images", 3, BACKOFF_S)
    assert (report.requeued, report.strikes) == ([job_id], [])


def test_the_wait_is_later_in_each_life_than_the_struck_run_and_doubles_per_strike() -> None:
    def suspect(strikes: int, uptime_s: float) -> InterruptedJob:
        return InterruptedJob(1, 1, suspect=True, strikes=strikes, at_work_alone=True, uptime_s=uptime_s)

    low, high = JITTER
    assert (low, high) == (1.0, 2.0)
    # Struck 40 s after its daemon started: it next tries 40-80 s into a life (at least BACKOFF_S).
    first = judge(suspect(0, 40.0), 3, BACKOFF_S, now=lambda: 1000.0, jitter=lambda: low)
    assert (first.strikes, first.backoff_batches, first.not_before) == (1, BACKOFF_BATCHES, 1000.0 + 40.0)
    second = judge(suspect(1, 50.0), 3, BACKOFF_S, now=lambda: 1000.0, jitter=lambda: high)
    assert (second.strikes, second.backoff_batches, second.not_before) == (2, 2 * BACKOFF_BATCHES, 1000.0 + 200.0)
    early = judge(suspect(0, 2.0), 3, BACKOFF_S, now=lambda: 0.0, jitter=lambda: high)
    assert early.not_before == BACKOFF_S, "never less than crash_backoff_s"
    drawn = judge(suspect(0, 30.0), 3, BACKOFF_S, now=lambda: 0.0)
    assert 30.0 * low <= drawn.not_before <= 30.0 * high
    # A job that was not a suspect, or not at work alone, is never struck.
    assert judge(InterruptedJob(1, 1, False, 2, True), 3, BACKOFF_S).strikes == 2
    assert judge(InterruptedJob(1, 1, True, 2, False), 3, BACKOFF_S).quarantine is False
    # With a limit of 1, the first strike quarantines.
    assert judge(suspect(0, 1.0), 1, BACKOFF_S).error == "crashed the daemon once while running alone"


async def test_every_start_restarts_a_struck_suspects_wait(store: Store, tmp_path: Path) -> None:
    (job_id,) = await cells(store, 1)
    await die(store, tmp_path, [job_id])
    await store.jobs.mark_running([job_id])
    assert await store.jobs.mark_at_work_alone(job_id, uptime_s=30.0)
    before = time.time()
    await recover(store, tmp_path / "images", 3, BACKOFF_S)
    (first,) = await store.jobs.queued()
    assert before + 30.0 <= first.not_before <= time.time() + 60.0
    # Another start (a kill before it ran again): the wait is counted from this start, not the last one.
    before = time.time()
    report = await recover(store, tmp_path / "images", 3, BACKOFF_S)
    assert report == RecoveryReport()
    (again,) = await store.jobs.queued()
    assert before + 30.0 <= again.not_before <= time.time() + 60.0 and again.strikes == 1
