"""Chaos from outside: SIGKILL the daemon at random moments while a sweep runs, restart it each time (as systemd
would), and count what came out of it in the SQLite file. Used by tests/daemon/test_crash_guard.py and
bench/chaos.py.

Kill moments are random but seeded, and every one is logged (life, what its delay counted from, the delay, the
uptime it came at, what was running), so a failing run can be replayed with the same seed. Each life gets one
kill, drawn uniformly within a model load plus SPAN_BATCHES batches after the daemon answers ``/healthz``: a fresh
process loads the model first, so most kills land in the load and the rest in batches. The kills are not aimed at
anything: the crash guard has to tell them from a poison job itself.

The windows follow the machine rather than a clock read once, because a loaded machine can change speed several
times within a run. The daemon's own events measure them: ``job.progress``'s ``elapsed`` at the first step of a life
is that life's model load, and a full batch that started after it lasts from its ``job.started`` to its last
``job.done``; each life draws from the latest figures. A draw that falls past the load is counted from the moment
this life's load is seen to end (its first step), so a kill meant for a batch lands in one however long the load
took. A life whose queue holds only suspects waiting out their backoff starts no batch at boot; it has no load to
count from, and its kill counts from ``/healthz`` (aiming at the first step there would aim at the suspect). If the
sweep is through before the kills are spent, another one is queued (at most MAX_SWEEPS in all), so the number of
kills never depends on how fast the machine ran.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cauldron_client import Client, EventStream

from tests.daemon.process import DaemonProcess

SPAN_BATCHES = 2
MAX_SWEEPS = 4  # sweeps queued in one run, the first included; past it the run fails rather than go on
WORK_EVENTS = ["job.started", "job.progress", "job.done", "job.failed"]


@dataclass
class KillRecord:
    life: int
    after: str  # what the delay counted from: "healthz", "load end", "first batch" (life 0), "refill"
    delay_s: float
    uptime_s: float  # seconds after /healthz that the kill came
    done_before: int  # images committed when the kill came
    running: list[int]  # job ids left ``running`` in SQLite: the batch the kill interrupted (empty: none)


@dataclass
class ChaosFigures:
    seed: int
    cells: int  # per sweep
    sweeps: int = 0
    jobs: int = 0  # job rows, all sweeps together
    kills: int = 0
    kills_in_batches: int = 0
    done: int = 0
    duplicates: int = 0  # jobs with more than one image
    failed: int = 0
    suspects: int = 0  # jobs that were ever suspects
    strikes: int = 0  # strikes counted, all jobs together
    max_strikes: int = 0  # the most any one job got
    quarantined: int = 0
    images: int = 0  # image rows
    files: int = 0  # files in images/
    orphan_files: int = 0  # files in images/ that no row points at (or rows without a file)
    seconds: float = 0.0
    log: list[KillRecord] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key != "log"}


@dataclass
class Pace:
    """The latest model load and full batch measured, in seconds: what the next life's kill is drawn from."""

    load_s: float
    batch_s: float


@dataclass
class Plan:
    after: str  # see KillRecord.after
    delay_s: float
    anchor: float | None = None  # monotonic, when what it counts from is known already (the first batch's end)


class LifeWatch:
    """One life of the daemon as its events show it: when its model load ended, how long a full batch took."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.load_end: float | None = None  # monotonic: the life's first denoising step
        self.load_s: float | None = None  # that batch's own ``elapsed`` then: the model load and one step
        self.batch_s: float | None = None  # the latest full batch started after the load: its start to its last image
        self.batch_end: float | None = None  # monotonic: when that batch ended
        self.first_step: dict[int, float] = {}  # experiment id -> monotonic, its first step in this life
        self.finishes = 0  # job.done / job.failed seen: the only moments the sweeps can become finished
        self._batch_of: dict[int, frozenset[int]] = {}  # job id -> its batch, from job.started
        self._started: dict[frozenset[int], float] = {}  # batch -> when it started, if the model was loaded then

    def see(self, event: Mapping[str, Any], now: float) -> None:
        kind = event.get("type")
        if kind == "job.started":
            batch = frozenset(int(job_id) for job_id in event["batch"])
            self._batch_of.update(dict.fromkeys(batch, batch))
            if self.load_end is not None:  # the first batch of a life loads the model: not a batch's time
                self._started.setdefault(batch, now)
        elif kind == "job.progress":
            if self.load_end is None:
                self.load_end, self.load_s = now, float(event["elapsed"])
            self.first_step.setdefault(int(event["experiment_id"]), now)
        elif kind in ("job.done", "job.failed"):
            self.finishes += 1
            ended = self._batch_of.pop(int(event["job_id"]), None)
            # A batch that started before this client subscribed (at boot) has no members known: not measured.
            if ended is None or any(job_id in self._batch_of for job_id in ended):
                return
            started = self._started.pop(ended, None)
            if started is not None and len(ended) >= self.batch_size and kind == "job.done":
                self.batch_s, self.batch_end = now - started, now


def sql(data_dir: Path, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "cauldron.sqlite3") as db:
        return db.execute(query, args).fetchall()


class _Run:
    def __init__(
        self, data_dir: Path, rng: random.Random, *, cells: int, batch_size: int, size: int, steps: int,
        timeout: float, name: str,
    ) -> None:  # fmt: skip
        self.data_dir, self.rng = data_dir, rng
        self.cells, self.batch_size, self.size, self.steps = cells, batch_size, size, steps
        self.timeout, self.name = timeout, name
        self.deadline = time.monotonic() + timeout
        self.experiments: list[int] = []
        self.pace = Pace(0.0, 0.0)  # measured in the first life

    def left_s(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"chaos run over {self.timeout} s")
        return left

    async def queue_sweep(self, client: Client) -> int:
        if len(self.experiments) >= MAX_SWEEPS:
            raise AssertionError(f"{MAX_SWEEPS} sweeps were through before the kills were spent")
        created = await client.call(
            "experiments.create",
            name=f"{self.name} sweep {len(self.experiments) + 1}",
            base={"prompt": "a lighthouse at dusk", "width": self.size, "height": self.size, "steps": self.steps},
            axes={"seed": list(range(1, self.cells + 1))},
        )
        experiment_id = int(created["experiment"]["id"])
        self.experiments.append(experiment_id)
        return experiment_id

    async def counts(self, client: Client, *names: str) -> int:
        total = 0
        for experiment_id in self.experiments:
            got = await client.call("experiments.get", experiment_id=experiment_id, jobs_limit=1)
            total += sum(int(got["experiment"]["counts"][name]) for name in names)
        return total

    def starts_a_batch_at_boot(self) -> bool:
        """Whether this life began with a batch (so its first step ends a model load): a job is running, or one
        is queued that no backoff holds back by time (a wait in batches is lifted when nothing else is queued)."""
        ((starts,),) = sql(
            self.data_dir,
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'running' OR (status = 'queued' AND not_before <= ?))",
            time.time(),
        )
        return bool(starts)

    async def wait(
        self, client: Client, stream: EventStream, watch: LifeWatch, moment: Callable[[], float | None]
    ) -> bool:
        """Follows the events until ``moment()`` (monotonic; None: not known yet) has come: True; or until every
        sweep is finished first: False."""
        checked = -1
        while True:
            if watch.finishes != checked:
                checked = watch.finishes
                if await self.counts(client, "queued", "running") == 0:
                    return False
            due, left = moment(), self.left_s()
            now = time.monotonic()
            if due is not None and now >= due:
                return True
            event = await stream.next(left if due is None else min(left, due - now))
            if event is not None:
                watch.see(event, time.monotonic())

    async def plan(self, life: int, client: Client, stream: EventStream, watch: LifeWatch) -> Plan:
        """This life's kill. The first life measures the machine (a model load, then a full batch after it)
        and is killed within the batch after that; later lives draw within a load plus SPAN_BATCHES batches, as
        measured last."""
        if life == 0:
            await self.queue_sweep(client)
            while not await self.wait(client, stream, watch, lambda: None if watch.batch_end is None else 0.0):
                await self.queue_sweep(client)  # a sweep too short to measure a batch after the load
            assert watch.load_s is not None and watch.batch_s is not None
            self.pace = Pace(watch.load_s, watch.batch_s)
            return Plan("first batch", self.rng.uniform(0, self.pace.batch_s), watch.batch_end)
        load_s, batch_s = self.pace.load_s, self.pace.batch_s
        drawn = self.rng.uniform(0, load_s + SPAN_BATCHES * batch_s)
        if drawn >= load_s and self.starts_a_batch_at_boot():
            return Plan("load end", drawn - load_s)
        return Plan("healthz", drawn)

    async def until_kill(
        self, client: Client, stream: EventStream, watch: LifeWatch, plan: Plan, healthy: float
    ) -> Plan:
        """Waits for the planned moment, queueing another sweep whenever the work runs out first; the plan kept."""
        refill: list[int] = []

        def moment() -> float | None:
            if plan.anchor is not None:
                anchor: float | None = plan.anchor
            elif plan.after == "refill":
                anchor = watch.first_step.get(refill[-1])
            else:
                anchor = healthy if plan.after == "healthz" else watch.load_end
            return None if anchor is None else anchor + plan.delay_s

        while not await self.wait(client, stream, watch, moment):
            refill.append(await self.queue_sweep(client))
            # The model is loaded: counted from the new sweep's first step, the kill lands in one of its batches.
            plan = Plan("refill", self.rng.uniform(0, SPAN_BATCHES * self.pace.batch_s))
        return plan

    def learn(self, watch: LifeWatch) -> None:
        """The next life draws from what this one measured."""
        if watch.load_s is not None:
            self.pace.load_s = watch.load_s
        if watch.batch_s is not None:
            self.pace.batch_s = watch.batch_s


async def run_chaos(
    work_dir: Path,
    models_dir: Path,
    *,
    cells: int,
    kills: int,
    seed: int,
    batch_size: int = 4,
    size: int = 64,
    steps: int = 2,
    env: Mapping[str, str] | None = None,
    say: Callable[[str], None] = print,
    timeout: float = 900.0,
) -> ChaosFigures:
    if kills < 1:
        raise ValueError("a chaos run kills the daemon at least once")
    data_dir = work_dir / "data"
    daemon_env = {"CAULDRON_MAX_BATCH_SIZE": str(batch_size), "CAULDRON_PLUGINS": "diffusers", **(env or {})}
    figures = ChaosFigures(seed=seed, cells=cells)
    run = _Run(data_dir, random.Random(seed), cells=cells, batch_size=batch_size, size=size, steps=steps,
               timeout=timeout, name=f"chaos {seed}")  # fmt: skip
    started = time.monotonic()
    say(f"chaos: seed {seed}, {cells} cells, {kills} kills (replay with the same seed)")

    process = DaemonProcess(data_dir, models_dir, env=daemon_env)
    try:
        for life in range(kills + 1):
            if life > 0:
                process = DaemonProcess(data_dir, models_dir, env=daemon_env)  # as systemd's Restart= would
            process.start(timeout=min(120.0, run.left_s()))
            healthy = time.monotonic()
            async with Client(process.url, process.token) as client, client.events(WORK_EVENTS) as stream:
                watch = LifeWatch(min(batch_size, cells))
                if life == kills:  # the last life finishes the work
                    await run.wait(client, stream, watch, lambda: None)
                    break
                plan = await run.until_kill(client, stream, watch, await run.plan(life, client, stream, watch), healthy)
                done_before = await run.counts(client, "done")
            uptime = time.monotonic() - healthy
            process.kill()
            running = [int(row[0]) for row in sql(data_dir, "SELECT id FROM jobs WHERE status = 'running'")]
            figures.log.append(KillRecord(life, plan.after, round(plan.delay_s, 3), round(uptime, 3), done_before,
                                          running))  # fmt: skip
            figures.kills += 1
            figures.kills_in_batches += bool(running)
            run.learn(watch)
            say(f"chaos: kill {figures.kills} (life {life}, {plan.delay_s:.2f} s after {plan.after}, uptime "
                f"{uptime:.2f} s): {done_before} done, running {running or 'nothing'}; now a model load "
                f"{run.pace.load_s:.2f} s, a batch {run.pace.batch_s:.2f} s")  # fmt: skip
        figures.seconds = round(time.monotonic() - started, 1)
        process.terminate()
    finally:
        process.stop()

    figures.sweeps = len(run.experiments)
    count(figures, data_dir)
    say(f"chaos: {figures.summary()}")
    return figures


def count(figures: ChaosFigures, data_dir: Path) -> None:
    """The outcome, read from the SQLite file and the images folder (not from the daemon's answers)."""
    per_job = sql(data_dir, "SELECT j.id, COUNT(i.id) FROM jobs j LEFT JOIN images i ON i.job_id = j.id GROUP BY j.id")
    figures.jobs = len(per_job)
    figures.done = sum(1 for _, images in per_job if images >= 1)
    figures.duplicates = sum(1 for _, images in per_job if images > 1)
    ((failed, suspects, strikes, max_strikes, quarantined),) = sql(
        data_dir,
        "SELECT COALESCE(SUM(status = 'failed'), 0), COALESCE(SUM(suspect), 0), COALESCE(SUM(strikes), 0), "
        "COALESCE(MAX(strikes), 0), "
        "COALESCE(SUM(status = 'failed' AND last_error LIKE 'crashed the daemon%'), 0) FROM jobs",
    )
    figures.failed, figures.suspects, figures.strikes = failed, suspects, strikes
    figures.max_strikes, figures.quarantined = max_strikes, quarantined
    images_dir = data_dir / "images"
    on_disk = {p.relative_to(images_dir).as_posix() for p in images_dir.rglob("*") if p.is_file()}
    rows = [str(path) for (path,) in sql(data_dir, "SELECT path FROM images")]
    figures.images, figures.files = len(rows), len(on_disk)
    figures.orphan_files = len(on_disk ^ set(rows))
