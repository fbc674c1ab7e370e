"""Jobs: one per image cell. Their status moves queued -> running -> done / failed / cancelled, and back to
queued when a run is interrupted; every change commits before the caller acts on it."""

from __future__ import annotations

from collections.abc import Sequence

from cauldrond.store.database import (
    Database,
    StoreError,
    changed_rows,
    dumps,
    fetch_all,
    fetch_one,
    id_list,
    touch_experiments,
)
from cauldrond.store.images import check_relative_path
from cauldrond.store.rows import JOB_STATUSES, JobRow, NewImage, QueuedJobRow
from cauldrond.store.timestamps import utc_now

_WITH_IMAGE = "SELECT j.*, i.id AS image_id FROM jobs j LEFT JOIN images i ON i.job_id = j.id "


class JobRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def queued(self) -> list[QueuedJobRow]:
        """Every queued job, highest priority first, then by experiment and run order: the queue at start-up."""
        async with self._database.read() as db:
            rows = await fetch_all(
                db,
                "SELECT j.id, j.experiment_id, j.idx, e.priority, j.params "
                "FROM jobs j JOIN experiments e ON e.id = j.experiment_id "
                "WHERE j.status = 'queued' ORDER BY e.priority DESC, j.experiment_id, j.run_order",
            )
        return [QueuedJobRow.from_row(row) for row in rows]

    async def get(self, job_id: int) -> JobRow | None:
        async with self._database.read() as db:
            row = await fetch_one(db, _WITH_IMAGE + "WHERE j.id = ?", (int(job_id),))
        return JobRow.from_row(row) if row is not None else None

    async def page(self, experiment_id: int, limit: int, offset: int) -> list[JobRow]:
        """One experiment's jobs in index order."""
        async with self._database.read() as db:
            rows = await fetch_all(
                db,
                _WITH_IMAGE + "WHERE j.experiment_id = ? ORDER BY j.idx LIMIT ? OFFSET ?",
                (int(experiment_id), int(limit), int(offset)),
            )
        return [JobRow.from_row(row) for row in rows]

    async def count_by_status(self) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATUSES, 0)
        async with self._database.read() as db:
            rows = await fetch_all(db, "SELECT status, COUNT(*) FROM jobs GROUP BY status")
        counts.update({str(row[0]): int(row[1]) for row in rows})
        return counts

    async def mark_running(self, job_ids: Sequence[int]) -> list[int]:
        """queued -> running. Returns the ids that changed (a job cancelled meanwhile stays cancelled)."""
        now, ids = utc_now(), id_list(job_ids)
        async with self._database.write() as db:
            rows = await fetch_all(
                db,
                "UPDATE jobs SET status = 'running', started_at = ?, finished_at = NULL "
                "WHERE id IN (SELECT value FROM json_each(?)) AND status = 'queued' RETURNING id",
                (now, ids),
            )
            await touch_experiments(db, ids, now)
        return sorted(int(row[0]) for row in rows)

    async def requeue(self, job_ids: Sequence[int], *, count_attempt: bool) -> list[int]:
        """running -> queued (``attempts + 1`` when ``count_attempt``). Jobs of a cancelled experiment become
        cancelled instead, so a restart never revives them. Returns the ids that went back to queued."""
        now, ids = utc_now(), id_list(job_ids)
        async with self._database.write() as db:
            await db.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = ? "
                "WHERE id IN (SELECT value FROM json_each(?)) AND status = 'running' "
                "AND experiment_id IN (SELECT id FROM experiments WHERE cancelled_at IS NOT NULL)",
                (now, ids),
            )
            rows = await fetch_all(
                db,
                "UPDATE jobs SET status = 'queued', attempts = attempts + ?, started_at = NULL, "
                "finished_at = NULL "
                "WHERE id IN (SELECT value FROM json_each(?)) AND status = 'running' RETURNING id",
                (1 if count_attempt else 0, ids),
            )
            await touch_experiments(db, ids, now)
        return sorted(int(row[0]) for row in rows)

    async def mark_failed(self, job_id: int, error: str) -> bool:
        """queued/running -> failed with ``error``. False if the job is missing or already finished."""
        now = utc_now()
        async with self._database.write() as db:
            changed = await changed_rows(
                db,
                "UPDATE jobs SET status = 'failed', last_error = ?, finished_at = ? "
                "WHERE id = ? AND status IN ('queued', 'running')",
                (error, now, int(job_id)),
            )
            await touch_experiments(db, id_list([job_id]), now)
        return bool(changed)

    async def mark_cancelled(self, job_ids: Sequence[int]) -> list[int]:
        """queued/running -> cancelled; done (and failed) jobs keep their outcome. Returns the changed ids."""
        now, ids = utc_now(), id_list(job_ids)
        async with self._database.write() as db:
            rows = await fetch_all(
                db,
                "UPDATE jobs SET status = 'cancelled', finished_at = ? "
                "WHERE id IN (SELECT value FROM json_each(?)) AND status IN ('queued', 'running') "
                "RETURNING id",
                (now, ids),
            )
            await touch_experiments(db, ids, now)
        return sorted(int(row[0]) for row in rows)

    async def reap_interrupted(self, max_attempts: int) -> tuple[list[int], list[int]]:
        """At start, before serving: jobs left ``running`` by a crash go back to queued with ``attempts + 1``;
        those that reach ``max_attempts`` fail instead of crash-looping the daemon.
        Returns (requeued, failed) job ids."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        now = utc_now()
        async with self._database.write() as db:
            await db.execute(
                "UPDATE jobs SET status = 'cancelled', attempts = attempts + 1, finished_at = ? "
                "WHERE status = 'running' "
                "AND experiment_id IN (SELECT id FROM experiments WHERE cancelled_at IS NOT NULL)",
                (now,),
            )
            # SET expressions all read the row's old values, so every "attempts + 1" below is the new count.
            rows = await fetch_all(
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
            await touch_experiments(db, id_list(requeued + failed), now)
        return requeued, failed

    async def complete(self, job_id: int, image: NewImage) -> int:
        """Record a written image file and set its job done, in one transaction. Returns the image id.

        The file must already be on disk (fsynced and renamed): from this COMMIT on, the row points at it."""
        check_relative_path(image.path)
        params_json, metadata_json = dumps(image.params), dumps(image.metadata)
        now = utc_now()
        async with self._database.write() as db:
            job = await fetch_one(
                db,
                "UPDATE jobs SET status = 'done', finished_at = ?, last_error = NULL "
                "WHERE id = ? AND status != 'done' RETURNING experiment_id",
                (now, int(job_id)),
            )
            if job is None:
                raise StoreError(f"job {job_id} does not exist or is already done")
            cursor = await db.execute(
                "INSERT INTO images (job_id, experiment_id, path, sha256, size_bytes, seed, params, metadata, "
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
            await touch_experiments(db, id_list([job_id]), now)
        return image_id
