"""Experiments: creation with all their jobs, lookups with job counts, priority and cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from cauldrond.store.database import Database, StoreError, changed_rows, dumps, fetch_all, fetch_one
from cauldrond.store.prompts import prompt_pairs, record_prompts
from cauldrond.store.rows import ExperimentRow
from cauldrond.store.timestamps import utc_now

# Counts per status, derived from the jobs on every read so they can never disagree with them. They are
# aggregated per experiment in a subquery (from the (experiment_id, status) index alone) before the join, so an
# experiment's columns, its spec above all, are read once per experiment, never once per job: joining first and
# grouping after made a list of one 10,000-cell experiment with a 1 MB spec move 10 GB (issue 9).
_COUNTS = (
    "SELECT experiment_id, COUNT(*) AS total, SUM(status = 'queued') AS queued, "
    "SUM(status = 'running') AS running, SUM(status = 'done') AS done, SUM(status = 'failed') AS failed, "
    "SUM(status = 'cancelled') AS cancelled FROM jobs WHERE experiment_id IN ({ids}) GROUP BY experiment_id"
)
_COUNT_COLUMNS = ", ".join(
    f"COALESCE(c.{name}, 0) AS {name}" for name in ("total", "queued", "running", "done", "failed", "cancelled")
)
_EXPERIMENT_COLUMNS = "e.id, e.name, e.kind, {spec} AS spec, e.priority, e.created_at, e.updated_at, e.cancelled_at"
# Lists never carry the spec (it may be megabytes of cells): their rows have an empty one.
_NO_SPEC = "'{}'"


class ExperimentRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def create(
        self,
        *,
        name: str,
        kind: str,
        spec: Mapping[str, Any],
        priority: int,
        cells: Sequence[Mapping[str, Any]],
        run_order: Sequence[int] | None = None,
    ) -> tuple[int, list[int]]:
        """Insert the experiment and one queued job per cell (``idx`` = position) in one transaction, and count
        a use of each of its prompt pairs in the prompt history.
        ``run_order[i]`` is cell i's place in the run (the planner's order); by default the index order."""
        if not cells:
            raise StoreError("an experiment needs at least one cell")
        order = list(range(len(cells))) if run_order is None else list(run_order)
        if sorted(order) != list(range(len(cells))):
            raise StoreError("run_order must be a permutation of the cell indexes")
        # Encoding thousands of cells is CPU work: keep it off the event loop and outside the lock.
        spec_json, cell_json, pairs = await asyncio.to_thread(
            lambda: (dumps(spec), [dumps(c) for c in cells], prompt_pairs(cells))
        )
        now = utc_now()
        async with self._database.write() as db:
            cursor = await db.execute(
                "INSERT INTO experiments (name, kind, spec, priority, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, kind, spec_json, int(priority), now, now),
            )
            experiment_id = int(cursor.lastrowid)
            await cursor.close()
            await db.executemany(
                "INSERT INTO jobs (experiment_id, idx, run_order, params, status, created_at) "
                "VALUES (?, ?, ?, ?, 'queued', ?)",
                [(experiment_id, idx, order[idx], params, now) for idx, params in enumerate(cell_json)],
            )
            rows = await fetch_all(db, "SELECT id FROM jobs WHERE experiment_id = ? ORDER BY idx", (experiment_id,))
            # In the same transaction: the history never names a prompt of an experiment that was not stored.
            await record_prompts(db, pairs, now)
        return experiment_id, [int(row[0]) for row in rows]

    async def get(self, experiment_id: int) -> ExperimentRow | None:
        async with self._database.read() as db:
            row = await fetch_one(
                db,
                # Constant SQL fragments only; every value is a placeholder.
                f"SELECT {_EXPERIMENT_COLUMNS.format(spec='e.spec')}, {_COUNT_COLUMNS} FROM experiments e "  # nosec B608
                f"LEFT JOIN ({_COUNTS.format(ids='?')}) c ON c.experiment_id = e.id WHERE e.id = ?",
                (int(experiment_id), int(experiment_id)),
            )
        return ExperimentRow.from_row(row) if row is not None else None

    async def page(self, limit: int, offset: int) -> list[ExperimentRow]:
        """Newest first, without their specs (each row's ``spec`` is empty; ``get`` has it): a page costs its own
        experiments and the index entries of their jobs, whatever the specs weigh."""
        async with self._database.read() as db:
            rows = await fetch_all(
                db,
                "WITH page AS (SELECT id FROM experiments ORDER BY id DESC LIMIT ? OFFSET ?) "  # nosec B608
                f"SELECT {_EXPERIMENT_COLUMNS.format(spec=_NO_SPEC)}, {_COUNT_COLUMNS} "
                "FROM page JOIN experiments e ON e.id = page.id "
                f"LEFT JOIN ({_COUNTS.format(ids='SELECT id FROM page')}) c ON c.experiment_id = e.id "
                "ORDER BY e.id DESC",
                (int(limit), int(offset)),
            )
        return [ExperimentRow.from_row(row) for row in rows]

    async def set_priority(self, experiment_id: int, priority: int) -> bool:
        async with self._database.write() as db:
            changed = await changed_rows(
                db,
                "UPDATE experiments SET priority = ?, updated_at = ? WHERE id = ?",
                (int(priority), utc_now(), int(experiment_id)),
            )
        return bool(changed)

    async def cancel(self, experiment_id: int) -> tuple[list[int], list[int]] | None:
        """Cancel the queued jobs and mark the experiment cancelled. Returns (cancelled job ids, running job
        ids); the running ones are the engine's to stop. None if there is no such experiment. A finished one
        (nothing queued or running) is left as it is, so finished work is never relabelled cancelled."""
        now = utc_now()
        async with self._database.write() as db:
            found = await fetch_one(db, "SELECT id FROM experiments WHERE id = ?", (int(experiment_id),))
            if found is None:
                return None
            await changed_rows(
                db,
                "UPDATE experiments SET cancelled_at = COALESCE(cancelled_at, ?), updated_at = ? WHERE id = ? "
                "AND EXISTS (SELECT 1 FROM jobs WHERE experiment_id = ? AND status IN ('queued', 'running'))",
                (now, now, int(experiment_id), int(experiment_id)),
            )
            cancelled = await fetch_all(
                db,
                "UPDATE jobs SET status = 'cancelled', finished_at = ? "
                "WHERE experiment_id = ? AND status = 'queued' RETURNING id",
                (now, int(experiment_id)),
            )
            running = await fetch_all(
                db,
                "SELECT id FROM jobs WHERE experiment_id = ? AND status = 'running' ORDER BY idx",
                (int(experiment_id),),
            )
        return sorted(int(row[0]) for row in cancelled), [int(row[0]) for row in running]
