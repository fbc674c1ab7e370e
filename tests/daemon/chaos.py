"""Chaos from outside: SIGKILL the daemon at random moments while a sweep runs, restart it each time (as systemd
would), and count what came out of it in the SQLite file. Used by tests/daemon/test_crash_guard.py and
bench/chaos.py.

Kill moments are random but seeded, and every one is logged (life, delay, what was running), so a failing run can
be replayed with the same seed. In each life the kill comes at a moment drawn uniformly within a model load plus
SPAN_BATCHES batches after the daemon answers ``/healthz``: a fresh process loads the model first, so most kills
land in the load and the rest in batches. The load and batch times are measured in the first life, so the draws
fit the machine. The kills are not aimed at anything: the crash guard has to tell them from a poison job itself.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cauldron_client import Client

from tests.daemon.process import DaemonProcess

SPAN_BATCHES = 2


@dataclass
class KillRecord:
    life: int
    delay_s: float
    done_before: int  # images committed when the kill came
    running: list[int]  # job ids left ``running`` in SQLite: the batch the kill interrupted (empty: none)


@dataclass
class ChaosFigures:
    seed: int
    cells: int
    kills: int = 0
    kills_in_batches: int = 0
    done: int = 0
    duplicates: int = 0  # jobs with more than one image
    failed: int = 0
    suspects: int = 0  # jobs that were ever suspects
    strikes: int = 0  # strikes counted, all jobs together
    quarantined: int = 0
    orphan_files: int = 0  # files in images/ that no row points at (or rows without a file)
    seconds: float = 0.0
    log: list[KillRecord] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key != "log"}


def sql(data_dir: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "cauldron.sqlite3") as db:
        return db.execute(query).fetchall()


async def _done(client: Client, experiment_id: int) -> int:
    got = await client.call("experiments.get", experiment_id=experiment_id, jobs_limit=1)
    return int(got["experiment"]["counts"]["done"])


async def _wait_done(client: Client, experiment_id: int, at_least: int, timeout: float) -> float:
    """Seconds until ``at_least`` images are committed (bounded by ``timeout``)."""
    started = time.monotonic()
    while await _done(client, experiment_id) < at_least:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"fewer than {at_least} images within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


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
    rng = random.Random(seed)
    data_dir = work_dir / "data"
    daemon_env = {"CAULDRON_MAX_BATCH_SIZE": str(batch_size), "CAULDRON_PLUGINS": "diffusers", **(env or {})}
    figures = ChaosFigures(seed=seed, cells=cells)
    started = time.monotonic()
    say(f"chaos: seed {seed}, {cells} cells, {kills} kills (replay with the same seed)")

    process = DaemonProcess(data_dir, models_dir, env=daemon_env)
    try:
        process.start()
        healthy = time.monotonic()
        async with Client(process.url, process.token) as client, client.events(["job.progress"]) as stream:
            created = await client.call(
                "experiments.create",
                name=f"chaos {seed}",
                base={"prompt": "a lighthouse at dusk", "width": size, "height": size, "steps": steps},
                axes={"seed": list(range(1, cells + 1))},
            )
            experiment_id = int(created["experiment"]["id"])
            # First life: measure a model load and a batch on this machine, then kill within the next batch.
            if await stream.next(timeout) is None:
                raise AssertionError("no denoising step in the first life")
            load_s = time.monotonic() - healthy
            batch_s = await _wait_done(client, experiment_id, min(batch_size, cells), timeout)
            say(f"chaos: model load and start {load_s:.2f} s, a batch {batch_s:.2f} s")
            delay = rng.uniform(0, batch_s)
            await asyncio.sleep(delay)
            done_before = await _done(client, experiment_id)
        life = 0
        while True:
            process.kill()
            running = [int(row[0]) for row in sql(data_dir, "SELECT id FROM jobs WHERE status = 'running'")]
            figures.log.append(KillRecord(life, round(delay, 3), done_before, running))
            figures.kills += 1
            figures.kills_in_batches += bool(running)
            moment = "after its first batch" if life == 0 else "after /healthz"
            say(f"chaos: kill {figures.kills} (life {life}, {delay:.2f} s {moment}): {done_before} done, "
                f"running {running or 'nothing'}")  # fmt: skip
            if time.monotonic() - started > timeout:
                raise AssertionError(f"chaos run over {timeout} s")
            life += 1
            delay = rng.uniform(0, load_s + SPAN_BATCHES * batch_s)  # drawn first: the sequence is the seed's
            process = DaemonProcess(data_dir, models_dir, env=daemon_env)
            process.start()
            healthy = time.monotonic()
            async with Client(process.url, process.token) as client:
                if figures.kills >= kills or await _done(client, experiment_id) >= cells:
                    await _wait_done(client, experiment_id, cells, timeout)
                    break
                await asyncio.sleep(max(0.0, delay - (time.monotonic() - healthy)))
                done_before = await _done(client, experiment_id)
        figures.seconds = round(time.monotonic() - started, 1)
        process.terminate()
    finally:
        process.stop()

    count(figures, data_dir)
    say(f"chaos: {figures.summary()}")
    return figures


def count(figures: ChaosFigures, data_dir: Path) -> None:
    """The outcome, read from the SQLite file and the images folder (not from the daemon's answers)."""
    per_job = sql(data_dir, "SELECT j.id, COUNT(i.id) FROM jobs j LEFT JOIN images i ON i.job_id = j.id GROUP BY j.id")
    figures.done = sum(1 for _, images in per_job if images >= 1)
    figures.duplicates = sum(1 for _, images in per_job if images > 1)
    ((failed, suspects, strikes, quarantined),) = sql(
        data_dir,
        "SELECT COALESCE(SUM(status = 'failed'), 0), COALESCE(SUM(suspect), 0), COALESCE(SUM(strikes), 0), "
        "COALESCE(SUM(status = 'failed' AND last_error LIKE 'crashed the daemon%'), 0) FROM jobs",
    )
    figures.failed, figures.suspects, figures.strikes, figures.quarantined = failed, suspects, strikes, quarantined
    images_dir = data_dir / "images"
    on_disk = {p.relative_to(images_dir).as_posix() for p in images_dir.rglob("*") if p.is_file()}
    rows = {str(path) for (path,) in sql(data_dir, "SELECT path FROM images")}
    figures.orphan_files = len(on_disk ^ rows)
