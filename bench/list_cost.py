"""What an experiments.list page costs as an experiment's jobs and spec grow: the query before issue 9 (every job
row joined with the experiment, spec included, then grouped) against today's (counts aggregated per experiment
from the (experiment_id, status) index before the join, no spec in a list), side by side on the same file.

    .venv/bin/python bench/list_cost.py
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from harness import machine

from cauldrond.store import Store

# The list query as it was (store/experiments.py before the fix), kept here as the reference.
JOINED_THEN_GROUPED = (
    "SELECT e.id, e.name, e.kind, e.spec, e.priority, e.created_at, e.updated_at, e.cancelled_at, "
    "COUNT(j.id) AS total, COALESCE(SUM(j.status = 'queued'), 0) AS queued, "
    "COALESCE(SUM(j.status = 'running'), 0) AS running, COALESCE(SUM(j.status = 'done'), 0) AS done, "
    "COALESCE(SUM(j.status = 'failed'), 0) AS failed, COALESCE(SUM(j.status = 'cancelled'), 0) AS cancelled "
    "FROM (SELECT * FROM experiments ORDER BY id DESC LIMIT ? OFFSET ?) e "
    "LEFT JOIN jobs j ON j.experiment_id = e.id GROUP BY e.id ORDER BY e.id DESC"
)
SIZES = [(1_000, 100), (2_000, 100), (2_000, 200)]  # (jobs, bytes of prompt per cell in the spec)


async def one(folder: Path, jobs: int, prompt: int) -> tuple[float, float, int]:
    path = folder / f"list-{jobs}-{prompt}.sqlite3"
    store = await Store.open(path)
    cells = [{"prompt": f"{n:06d} " + "x" * (prompt - 7), "seed": n} for n in range(jobs)]
    await store.experiments.create(name="big", kind="sweep", spec={"cells": cells}, priority=0, cells=cells)
    started = time.perf_counter()
    await store.experiments.page(50, 0)
    now = time.perf_counter() - started
    await store.close()
    connection = sqlite3.connect(path)
    started = time.perf_counter()
    connection.execute(JOINED_THEN_GROUPED, (50, 0)).fetchall()
    before = time.perf_counter() - started
    connection.close()
    return before, now, len(str(cells))


async def main() -> None:
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as folder:
        for jobs, prompt in SIZES:
            before, now, spec = await one(Path(folder), jobs, prompt)
            print(
                f"{jobs:>6,} jobs, spec {spec / 1e6:5.2f} MB:  joined-then-grouped {before * 1000:9.1f} ms   "
                f"counts-first {now * 1000:6.2f} ms   ratio {before / now:8.0f}x"
            )


if __name__ == "__main__":
    asyncio.run(main())
