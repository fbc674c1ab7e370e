"""The SQLite store: the one durable copy of experiments, jobs, images, annotations and tokens.

Every method returns only after its COMMIT, so a caller may acknowledge or announce the change as soon as the
await returns. One aiosqlite connection serves the whole daemon; one asyncio lock is held around every
transaction *and* every read, because reads on the same connection would otherwise see a write transaction's
uncommitted rows between two of its awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import aiosqlite

from cauldrond.store.migrations import apply_migrations
from cauldrond.store.plugin_runs import PluginRunsMixin
from cauldrond.store.rows import (
    JOB_STATUSES,
    AnnotationRow,
    ExperimentRow,
    ImageRow,
    JobRow,
    NewImage,
    QueuedJobRow,
)
from cauldrond.store.timestamps import utc_now
from cauldrond.store.tokens import TokensMixin

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """A request the store refuses (a job already done, an unsafe image path...). Nothing was changed."""


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _loads(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {"value": value}


def _ids(job_ids: Iterable[int]) -> str:
    # Id lists travel as one JSON parameter read through json_each, so every statement stays a constant.
    return _dumps([int(job_id) for job_id in job_ids])


def _check_relative_path(path: str) -> None:
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or "\\" in path or ".." in parts or ":" in parts[0]:
        raise StoreError(f"image path must be relative to the images folder and stay inside it, got {path!r}")


def _experiment(row: sqlite3.Row) -> ExperimentRow:
    counts = {status: int(row[status]) for status in JOB_STATUSES}
    counts["total"] = int(row["total"])
    return ExperimentRow(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        spec=_loads(row["spec"]),
        priority=row["priority"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        cancelled_at=row["cancelled_at"],
        counts=counts,
    )


def _job(row: sqlite3.Row) -> JobRow:
    return JobRow(
        id=row["id"],
        experiment_id=row["experiment_id"],
        idx=row["idx"],
        params=_loads(row["params"]),
        status=row["status"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        image_id=row["image_id"],
    )


def _image(row: sqlite3.Row) -> ImageRow:
    return ImageRow(
        id=row["id"],
        job_id=row["job_id"],
        experiment_id=row["experiment_id"],
        path=row["path"],
        sha256=row["sha256"],
        size_bytes=row["size_bytes"],
        seed=row["seed"],
        params=_loads(row["params"]),
        metadata=_loads(row["metadata"]),
        wall_time_s=row["wall_time_s"],
        peak_memory_bytes=row["peak_memory_bytes"],
        created_at=row["created_at"],
    )


class Store(PluginRunsMixin, TokensMixin):
    """Plugin queries (post-processing runs, annotation search) come from ``PluginRunsMixin``."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db: aiosqlite.Connection | None = db
        self.path = path
        self._lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: Path) -> Store:
        """Open (or create) the database at ``path`` and bring its schema up to date."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the sqlite3 module must not open transactions behind our back; we BEGIN them.
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            # Only other processes (a backup, the sqlite3 shell) can hold the lock; wait for them, briefly.
            await db.execute("PRAGMA busy_timeout = 10000")
            async with db.execute("PRAGMA journal_mode = WAL") as cursor:
                row = await cursor.fetchone()
            if row is None or str(row[0]).lower() != "wal":
                log.warning("SQLite refused WAL mode for %s (journal mode %s)", path, row[0] if row else None)
            # FULL: each COMMIT is fsynced, so an acknowledged change survives a power cut, not only a crash.
            await db.execute("PRAGMA synchronous = FULL")
            await db.execute("PRAGMA foreign_keys = ON")
            await apply_migrations(db)
        except BaseException:
            await db.close()
            raise
        return cls(db, path)

    async def close(self) -> None:
        if self._db is None:
            return
        async with self._lock:
            db, self._db = self._db, None
            await db.close()

    @property
    def is_open(self) -> bool:
        return self._db is not None

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("the store is closed")
        return self._db

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            yield self._conn()

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction. IMMEDIATE takes the write lock first, so it cannot fail halfway on BUSY."""
        async with self._lock:
            db = self._conn()
            try:
                # BEGIN sits inside the try: if we are cancelled while it is queued it still runs, and must
                # not leave a transaction open for the next caller.
                await db.execute("BEGIN IMMEDIATE")
                yield db
                await db.execute("COMMIT")
            except BaseException:
                # Also on cancellation: the connection's thread runs statements in order, so this ROLLBACK
                # lands after any statement still in flight. It fails harmlessly if no transaction began.
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await db.execute("ROLLBACK")
                raise

    @staticmethod
    async def _all(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with db.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    @staticmethod
    async def _one(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        async with db.execute(sql, params) as cursor:
            row: sqlite3.Row | None = await cursor.fetchone()
            # Drain the statement so an UPDATE ... RETURNING has finished before the transaction goes on.
            await cursor.fetchall()
            return row

    @staticmethod
    async def _touch_experiments(db: aiosqlite.Connection, job_ids_json: str, now: str) -> None:
        await db.execute(
            "UPDATE experiments SET updated_at = ? WHERE id IN "
            "(SELECT DISTINCT experiment_id FROM jobs WHERE id IN (SELECT value FROM json_each(?)))",
            (now, job_ids_json),
        )

    # -- experiments -----------------------------------------------------------------------------------------

    async def create_experiment(
        self,
        *,
        name: str,
        kind: str,
        spec: Mapping[str, Any],
        priority: int,
        cells: Sequence[Mapping[str, Any]],
        run_order: Sequence[int] | None = None,
    ) -> tuple[int, list[int]]:
        """Insert the experiment and one queued job per cell (``idx`` = position) in one transaction.
        ``run_order[i]`` is cell i's place in the run (the planner's order); by default the index order."""
        if not cells:
            raise StoreError("an experiment needs at least one cell")
        order = list(range(len(cells))) if run_order is None else list(run_order)
        if sorted(order) != list(range(len(cells))):
            raise StoreError("run_order must be a permutation of the cell indexes")
        # Encoding thousands of cells is CPU work: keep it off the event loop and outside the lock.
        spec_json, cell_json = await asyncio.to_thread(lambda: (_dumps(spec), [_dumps(c) for c in cells]))
        now = utc_now()
        async with self._write() as db:
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
            rows = await self._all(db, "SELECT id FROM jobs WHERE experiment_id = ? ORDER BY idx", (experiment_id,))
        return experiment_id, [int(row[0]) for row in rows]

    async def get_experiment(self, experiment_id: int) -> ExperimentRow | None:
        async with self._read() as db:
            row = await self._one(
                db,
                "SELECT e.id, e.name, e.kind, e.spec, e.priority, e.created_at, e.updated_at, "
                "e.cancelled_at, "
                "COUNT(j.id) AS total, "
                "COALESCE(SUM(j.status = 'queued'), 0) AS queued, "
                "COALESCE(SUM(j.status = 'running'), 0) AS running, "
                "COALESCE(SUM(j.status = 'done'), 0) AS done, "
                "COALESCE(SUM(j.status = 'failed'), 0) AS failed, "
                "COALESCE(SUM(j.status = 'cancelled'), 0) AS cancelled "
                "FROM experiments e LEFT JOIN jobs j ON j.experiment_id = e.id "
                "WHERE e.id = ? GROUP BY e.id",
                (int(experiment_id),),
            )
        return _experiment(row) if row is not None else None

    async def list_experiments(self, limit: int, offset: int) -> list[ExperimentRow]:
        """Newest first."""
        async with self._read() as db:
            rows = await self._all(
                db,
                "SELECT e.id, e.name, e.kind, e.spec, e.priority, e.created_at, e.updated_at, "
                "e.cancelled_at, "
                "COUNT(j.id) AS total, "
                "COALESCE(SUM(j.status = 'queued'), 0) AS queued, "
                "COALESCE(SUM(j.status = 'running'), 0) AS running, "
                "COALESCE(SUM(j.status = 'done'), 0) AS done, "
                "COALESCE(SUM(j.status = 'failed'), 0) AS failed, "
                "COALESCE(SUM(j.status = 'cancelled'), 0) AS cancelled "
                "FROM (SELECT * FROM experiments ORDER BY id DESC LIMIT ? OFFSET ?) e "
                "LEFT JOIN jobs j ON j.experiment_id = e.id "
                "GROUP BY e.id ORDER BY e.id DESC",
                (int(limit), int(offset)),
            )
        return [_experiment(row) for row in rows]

    async def set_experiment_priority(self, experiment_id: int, priority: int) -> bool:
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE experiments SET priority = ?, updated_at = ? WHERE id = ?",
                (int(priority), utc_now(), int(experiment_id)),
            )
            found = bool(cursor.rowcount)
            await cursor.close()
        return found

    async def cancel_experiment(self, experiment_id: int) -> tuple[list[int], list[int]] | None:
        """Cancel the queued jobs and mark the experiment cancelled. Returns (cancelled job ids, running job
        ids); the running ones are the engine's to stop. None if there is no such experiment."""
        now = utc_now()
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE experiments SET cancelled_at = COALESCE(cancelled_at, ?), updated_at = ? WHERE id = ?",
                (now, now, int(experiment_id)),
            )
            found = bool(cursor.rowcount)
            await cursor.close()
            if not found:
                return None
            cancelled = await self._all(
                db,
                "UPDATE jobs SET status = 'cancelled', finished_at = ? "
                "WHERE experiment_id = ? AND status = 'queued' RETURNING id",
                (now, int(experiment_id)),
            )
            running = await self._all(
                db,
                "SELECT id FROM jobs WHERE experiment_id = ? AND status = 'running' ORDER BY idx",
                (int(experiment_id),),
            )
        return sorted(int(row[0]) for row in cancelled), [int(row[0]) for row in running]

    # -- jobs ------------------------------------------------------------------------------------------------

    async def queued_jobs(self) -> list[QueuedJobRow]:
        """Every queued job, highest priority first, then by experiment and run order: the queue at start-up."""
        async with self._read() as db:
            rows = await self._all(
                db,
                "SELECT j.id, j.experiment_id, j.idx, e.priority, j.params "
                "FROM jobs j JOIN experiments e ON e.id = j.experiment_id "
                "WHERE j.status = 'queued' ORDER BY e.priority DESC, j.experiment_id, j.run_order",
            )
        return [
            QueuedJobRow(job_id=r[0], experiment_id=r[1], idx=r[2], priority=r[3], params=_loads(r[4])) for r in rows
        ]

    async def get_job(self, job_id: int) -> JobRow | None:
        async with self._read() as db:
            row = await self._one(
                db,
                "SELECT j.*, i.id AS image_id FROM jobs j LEFT JOIN images i ON i.job_id = j.id WHERE j.id = ?",
                (int(job_id),),
            )
        return _job(row) if row is not None else None

    async def list_jobs(self, experiment_id: int, limit: int, offset: int) -> list[JobRow]:
        """One experiment's jobs in index order."""
        async with self._read() as db:
            rows = await self._all(
                db,
                "SELECT j.*, i.id AS image_id FROM jobs j LEFT JOIN images i ON i.job_id = j.id "
                "WHERE j.experiment_id = ? ORDER BY j.idx LIMIT ? OFFSET ?",
                (int(experiment_id), int(limit), int(offset)),
            )
        return [_job(row) for row in rows]

    async def mark_running(self, job_ids: Sequence[int]) -> list[int]:
        """queued -> running. Returns the ids that changed (a job cancelled meanwhile stays cancelled)."""
        now, ids = utc_now(), _ids(job_ids)
        async with self._write() as db:
            rows = await self._all(
                db,
                "UPDATE jobs SET status = 'running', started_at = ?, finished_at = NULL "
                "WHERE id IN (SELECT value FROM json_each(?)) AND status = 'queued' RETURNING id",
                (now, ids),
            )
            await self._touch_experiments(db, ids, now)
        return sorted(int(row[0]) for row in rows)

    async def requeue(self, job_ids: Sequence[int], *, count_attempt: bool) -> list[int]:
        """running -> queued (``attempts + 1`` when ``count_attempt``). Jobs of a cancelled experiment become
        cancelled instead, so a restart never revives them. Returns the ids that went back to queued."""
        now, ids = utc_now(), _ids(job_ids)
        async with self._write() as db:
            await db.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = ? "
                "WHERE id IN (SELECT value FROM json_each(?)) AND status = 'running' "
                "AND experiment_id IN (SELECT id FROM experiments WHERE cancelled_at IS NOT NULL)",
                (now, ids),
            )
            rows = await self._all(
                db,
                "UPDATE jobs SET status = 'queued', attempts = attempts + ?, started_at = NULL, "
                "finished_at = NULL "
                "WHERE id IN (SELECT value FROM json_each(?)) AND status = 'running' RETURNING id",
                (1 if count_attempt else 0, ids),
            )
            await self._touch_experiments(db, ids, now)
        return sorted(int(row[0]) for row in rows)

    async def mark_failed(self, job_id: int, error: str) -> bool:
        """queued/running -> failed with ``error``. False if the job is missing or already finished."""
        now = utc_now()
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE jobs SET status = 'failed', last_error = ?, finished_at = ? "
                "WHERE id = ? AND status IN ('queued', 'running')",
                (error, now, int(job_id)),
            )
            changed = bool(cursor.rowcount)
            await cursor.close()
            await self._touch_experiments(db, _ids([job_id]), now)
        return changed

    async def mark_cancelled(self, job_ids: Sequence[int]) -> list[int]:
        """queued/running -> cancelled; done (and failed) jobs keep their outcome. Returns the changed ids."""
        now, ids = utc_now(), _ids(job_ids)
        async with self._write() as db:
            rows = await self._all(
                db,
                "UPDATE jobs SET status = 'cancelled', finished_at = ? "
                "WHERE id IN (SELECT value FROM json_each(?)) AND status IN ('queued', 'running') "
                "RETURNING id",
                (now, ids),
            )
            await self._touch_experiments(db, ids, now)
        return sorted(int(row[0]) for row in rows)

    async def count_jobs_by_status(self) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATUSES, 0)
        async with self._read() as db:
            rows = await self._all(db, "SELECT status, COUNT(*) FROM jobs GROUP BY status")
        counts.update({str(row[0]): int(row[1]) for row in rows})
        return counts

    async def reap_interrupted(self, max_attempts: int) -> tuple[list[int], list[int]]:
        """At start, before serving: jobs left ``running`` by a crash go back to queued with ``attempts + 1``;
        those that reach ``max_attempts`` fail instead of crash-looping the daemon.
        Returns (requeued, failed) job ids."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        now = utc_now()
        async with self._write() as db:
            await db.execute(
                "UPDATE jobs SET status = 'cancelled', attempts = attempts + 1, finished_at = ? "
                "WHERE status = 'running' "
                "AND experiment_id IN (SELECT id FROM experiments WHERE cancelled_at IS NOT NULL)",
                (now,),
            )
            # SET expressions all read the row's old values, so every "attempts + 1" below is the new count.
            rows = await self._all(
                db,
                "UPDATE jobs SET attempts = attempts + 1, started_at = NULL, "
                "status = CASE WHEN attempts + 1 >= ?1 THEN 'failed' ELSE 'queued' END, "
                "last_error = CASE WHEN attempts + 1 >= ?1 THEN 'interrupted ' || (attempts + 1) || ' times' "
                "ELSE last_error END, "
                "finished_at = CASE WHEN attempts + 1 >= ?1 THEN ?2 ELSE NULL END "
                "WHERE status = 'running' RETURNING id, status",
                (int(max_attempts), now),
            )
            requeued = sorted(int(row[0]) for row in rows if row[1] == "queued")
            failed = sorted(int(row[0]) for row in rows if row[1] == "failed")
            await self._touch_experiments(db, _ids(requeued + failed), now)
        return requeued, failed

    # -- images ----------------------------------------------------------------------------------------------

    async def complete_job(self, job_id: int, image: NewImage) -> int:
        """Record a written image file and set its job done, in one transaction. Returns the image id.

        The file must already be on disk (fsynced and renamed): from this COMMIT on, the row points at it."""
        _check_relative_path(image.path)
        params_json, metadata_json = _dumps(image.params), _dumps(image.metadata)
        now = utc_now()
        async with self._write() as db:
            job = await self._one(
                db,
                "UPDATE jobs SET status = 'done', finished_at = ?, last_error = NULL "
                "WHERE id = ? AND status != 'done' RETURNING experiment_id",
                (now, int(job_id)),
            )
            if job is None:
                raise StoreError(f"job {job_id} does not exist or is already done")
            cursor = await db.execute(
                "INSERT INTO images (job_id, experiment_id, path, sha256, size_bytes, seed, params, "
                "metadata, "
                "wall_time_s, peak_memory_bytes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    int(job_id),
                    int(job[0]),
                    image.path,
                    image.sha256,
                    int(image.size_bytes),
                    int(image.seed),
                    params_json,
                    metadata_json,
                    float(image.wall_time_s),
                    image.peak_memory_bytes,
                    now,
                ),
            )
            image_id = int(cursor.lastrowid)
            await cursor.close()
            await self._touch_experiments(db, _ids([job_id]), now)
        return image_id

    async def recent_timings(self, limit: int) -> list[tuple[str, int, int, int, float]]:
        """(model, steps, width, height, wall_time_s) of the latest images: the planner's duration estimates."""
        async with self._read() as db:
            rows = await self._all(
                db,
                "SELECT json_extract(params, '$.model'), json_extract(params, '$.steps'), "
                "json_extract(params, '$.width'), json_extract(params, '$.height'), wall_time_s "
                "FROM images WHERE wall_time_s > 0 ORDER BY id DESC LIMIT ?",
                (int(limit),),
            )
        return [(str(r[0]), int(r[1]), int(r[2]), int(r[3]), float(r[4])) for r in rows]

    async def get_image(self, image_id: int) -> ImageRow | None:
        async with self._read() as db:
            row = await self._one(db, "SELECT * FROM images WHERE id = ?", (int(image_id),))
        return _image(row) if row is not None else None

    async def list_images(self, *, experiment_id: int | None, limit: int, after_id: int | None) -> list[ImageRow]:
        """Images in ascending id after ``after_id`` (keyset pagination: each page is an index range seek)."""
        after = int(after_id) if after_id is not None else 0
        async with self._read() as db:
            if experiment_id is None:
                rows = await self._all(db, "SELECT * FROM images WHERE id > ? ORDER BY id LIMIT ?", (after, int(limit)))
            else:
                rows = await self._all(
                    db,
                    "SELECT * FROM images WHERE experiment_id = ? AND id > ? ORDER BY id LIMIT ?",
                    (int(experiment_id), after, int(limit)),
                )
        return [_image(row) for row in rows]

    async def image_files(self) -> list[tuple[int, int, str, str]]:
        """(image id, job id, relative path, sha256) of every image: what recovery checks on disk."""
        async with self._read() as db:
            rows = await self._all(db, "SELECT id, job_id, path, sha256 FROM images ORDER BY id")
        return [(int(r[0]), int(r[1]), str(r[2]), str(r[3])) for r in rows]

    async def drop_image_and_requeue(self, image_id: int, reason: str = "image file lost") -> int | None:
        """Forget an image whose file is gone or damaged and put its job back in the queue (or cancelled, if
        its experiment was cancelled). Returns the job id, or None if there is no such image."""
        now = utc_now()
        async with self._write() as db:
            row = await self._one(db, "DELETE FROM images WHERE id = ? RETURNING job_id", (int(image_id),))
            if row is None:
                return None
            job_id = int(row[0])
            await db.execute(
                "UPDATE jobs SET last_error = ?, started_at = NULL, "
                "status = CASE WHEN (SELECT cancelled_at FROM experiments WHERE id = jobs.experiment_id) "
                "IS NULL THEN 'queued' ELSE 'cancelled' END, "
                "finished_at = CASE WHEN (SELECT cancelled_at FROM experiments "
                "WHERE id = jobs.experiment_id) IS NULL THEN NULL ELSE ? END "
                "WHERE id = ?",
                (reason, now, job_id),
            )
            await self._touch_experiments(db, _ids([job_id]), now)
        return job_id

    # -- annotations (post-processor output) -----------------------------------------------------------------

    async def set_annotations(self, image_id: int, plugin: str, values: Mapping[str, str]) -> None:
        """Insert or replace ``plugin``'s annotations of one image."""
        now = utc_now()
        async with self._write() as db:
            await db.executemany(
                "INSERT INTO annotations (image_id, plugin, key, value, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (image_id, plugin, key) DO UPDATE SET value = excluded.value, "
                "created_at = excluded.created_at",
                [(int(image_id), plugin, str(key), str(value), now) for key, value in values.items()],
            )

    async def get_annotations(self, image_id: int) -> list[AnnotationRow]:
        async with self._read() as db:
            rows = await self._all(
                db,
                "SELECT image_id, plugin, key, value, created_at FROM annotations WHERE image_id = ? "
                "ORDER BY plugin, key",
                (int(image_id),),
            )
        return [AnnotationRow(r[0], r[1], r[2], r[3], r[4]) for r in rows]
