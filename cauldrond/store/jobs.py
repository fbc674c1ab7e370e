"""Jobs: one per image cell. Their status moves queued -> running -> done / failed / cancelled, and back to
queued when a run is interrupted; every change commits before the caller acts on it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class InterruptedJob:
    """A job found ``running`` at start: the process died while it ran."""

    id: int
    experiment_id: int
    suspect: bool  # it was already a suspect, and so ran alone
    strikes: int
    at_work_alone: bool  # it had begun its own work alone (the evidence was committed)
    uptime_s: float = 0.0  # that many seconds after its daemon started


@dataclass(frozen=True)
class Verdict:
    """The crash guard's decision on an ``InterruptedJob``; the job becomes (or stays) a suspect either way."""

    strikes: int
    quarantine: bool = False  # failed for good with ``error``
    backoff_batches: int = 0
    not_before: float = 0.0  # epoch seconds
    error: str | None = None  # the job's ``last_error`` (unchanged when None)


@dataclass(frozen=True)
class Reaped:
    job: InterruptedJob
    verdict: Verdict


def reaped_jobs(reaped: Sequence[Reaped]) -> list[InterruptedJob]:
    return [item.job for item in reaped]


_WITH_IMAGE = "SELECT j.*, i.id AS image_id FROM jobs j LEFT JOIN images i ON i.job_id = j.id "
# The columns QueuedJobRow.from_row reads, in its order.
_QUEUED = (
    "SELECT j.id, j.experiment_id, j.idx, e.priority, j.params, j.suspect, j.strikes, j.backoff_batches, "
    "j.not_before FROM jobs j JOIN experiments e ON e.id = j.experiment_id "
)


class JobRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def queued(self) -> list[QueuedJobRow]:
        """Every queued job, highest priority first, then by experiment and run order: the queue at start-up."""
        async with self._database.read() as db:
            rows = await fetch_all(
                db, _QUEUED + "WHERE j.status = 'queued' ORDER BY e.priority DESC, j.experiment_id, j.run_order"
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
        """queued -> running. Returns the ids that changed (a job cancelled meanwhile stays cancelled).

        Crash guard: the run starts without evidence, its jobs' waits are over, and every other suspect still
        waiting for batches (``backoff_batches``) has one fewer to let through, as the in-memory queue counts."""
        now, ids = utc_now(), id_list(job_ids)
        async with self._database.write() as db:
            rows = await fetch_all(
                db,
                "UPDATE jobs SET status = 'running', started_at = ?, finished_at = NULL, solo_at_work_at = NULL, "
                "backoff_batches = 0 "
                "WHERE id IN (SELECT value FROM json_each(?)) AND status = 'queued' RETURNING id",
                (now, ids),
            )
            await db.execute(
                "UPDATE jobs SET backoff_batches = backoff_batches - 1 "
                "WHERE backoff_batches > 0 AND status = 'queued' AND id NOT IN (SELECT value FROM json_each(?))",
                (ids,),
            )
            await touch_experiments(db, ids, now)
        return sorted(int(row[0]) for row in rows)

    async def mark_at_work_alone(self, job_id: int, uptime_s: float = 0.0) -> bool:
        """The crash guard's evidence: this running suspect, alone in its batch, has begun its own work (its model
        is loaded). A death from now until the run ends counts a strike at the next start."""
        async with self._database.write() as db:
            changed = await changed_rows(
                db,
                "UPDATE jobs SET solo_at_work_at = ?, solo_uptime_s = ? WHERE id = ? AND status = 'running'",
                (utc_now(), float(uptime_s), int(job_id)),
            )
        return bool(changed)

    async def clear_at_work(self) -> int:
        """A clean shutdown began: no running job may be blamed for what follows (a kill after SIGTERM)."""
        async with self._database.write() as db:
            return await changed_rows(
                db, "UPDATE jobs SET solo_at_work_at = NULL WHERE status = 'running' AND solo_at_work_at IS NOT NULL"
            )

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
                "finished_at = NULL, solo_at_work_at = NULL "
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

    async def reap_interrupted(
        self, judge: Callable[[InterruptedJob], Verdict], job_ids: Sequence[int] | None = None
    ) -> list[Reaped]:
        """At start, before serving: every job left ``running`` by a death of the process is judged by the crash
        guard (``store/recovery.py`` holds the rules) and requeued or failed in one transaction. Jobs of a
        cancelled experiment become cancelled instead and are not returned. ``attempts`` counts interruptions.

        With ``job_ids``, only those (of the running ones): the jobs of one batch whose Ray worker died while the
        daemon lives on (scaleout/remote_batch.py), judged by the same rules."""
        now = utc_now()
        # Every running job, or the given ones: json_each over NULL is empty, so "? IS NULL" picks the first.
        chosen = "(? IS NULL OR id IN (SELECT value FROM json_each(?)))"
        ids = None if job_ids is None else id_list(job_ids)
        async with self._database.write() as db:
            await db.execute(
                "UPDATE jobs SET status = 'cancelled', attempts = attempts + 1, finished_at = ?, "
                f"solo_at_work_at = NULL WHERE status = 'running' AND {chosen} "  # nosec B608: a constant
                "AND experiment_id IN (SELECT id FROM experiments WHERE cancelled_at IS NOT NULL)",
                (now, ids, ids),
            )
            rows = await fetch_all(
                db,
                "SELECT id, experiment_id, suspect, strikes, solo_at_work_at IS NOT NULL, solo_uptime_s FROM jobs "
                f"WHERE status = 'running' AND {chosen} ORDER BY id",  # nosec B608: a constant
                (ids, ids),
            )
            reaped = []
            for row in rows:
                job = InterruptedJob(int(row[0]), int(row[1]), bool(row[2]), int(row[3]), bool(row[4]), float(row[5]))
                verdict = judge(job)
                await db.execute(
                    "UPDATE jobs SET status = ?, attempts = attempts + 1, started_at = NULL, suspect = 1, "
                    "strikes = ?, solo_at_work_at = NULL, backoff_batches = ?, not_before = ?, "
                    "last_error = COALESCE(?, last_error), finished_at = ? WHERE id = ?",
                    (
                        "failed" if verdict.quarantine else "queued",
                        verdict.strikes,
                        verdict.backoff_batches,
                        verdict.not_before,
                        verdict.error,
                        now if verdict.quarantine else None,
                        job.id,
                    ),
                )
                reaped.append(Reaped(job, verdict))
            await touch_experiments(db, id_list([job.id for job in reaped_jobs(reaped)]), now)
        return reaped

    async def reschedule_struck(self, not_before: Callable[[int, float], float]) -> int:
        """At start, after the reap: every queued suspect with strikes waits anew in this life, until
        ``not_before(strikes, solo_uptime_s)``. Returns how many were rescheduled."""
        async with self._database.write() as db:
            rows = await fetch_all(
                db, "SELECT id, strikes, solo_uptime_s FROM jobs WHERE status = 'queued' AND strikes > 0"
            )
            for job_id, strikes, uptime_s in rows:
                await db.execute(
                    "UPDATE jobs SET not_before = ? WHERE id = ?",
                    (not_before(int(strikes), float(uptime_s)), int(job_id)),
                )
        return len(rows)

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
                # The id is past every id an image ever had (id_floors, migration 0010): a URL such as
                # /thumbs/256/<id>.webp is cached as immutable, so an emptied image's id must never come back.
                "INSERT INTO images (id, job_id, experiment_id, path, sha256, size_bytes, seed, params, metadata, "
                "wall_time_s, peak_memory_bytes, created_at) VALUES ("
                "(SELECT MAX(COALESCE((SELECT MAX(id) FROM images), 0), "
                "COALESCE((SELECT floor FROM id_floors WHERE name = 'images'), 0)) + 1), "
                "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

    async def retry(
        self, experiment_id: int, *, statuses: Sequence[str], job_ids: Sequence[int] | None = None
    ) -> list[QueuedJobRow]:
        """Failed and/or cancelled jobs of one experiment back to queued, with the params and seed they had;
        attempts and the last error start afresh (crash-guard strikes stay: a job quarantined before is
        quarantined again at its next crash). ``job_ids`` narrows the choice; an id that is not a job of this
        experiment in one of ``statuses`` refuses the whole call (StoreError, nothing changed).
        Clears the experiment's cancel mark when cancelled jobs come back, or a restart would cancel them again.
        Returns the requeued jobs in run order."""
        wanted = [status for status in statuses if status in ("failed", "cancelled")]
        if not wanted or len(wanted) != len(statuses):
            raise StoreError(f"only failed and cancelled jobs can be retried, got {list(statuses)!r}")
        now = utc_now()
        async with self._database.write() as db:
            candidates = await fetch_all(
                db,
                "SELECT id, status FROM jobs WHERE experiment_id = ? AND status IN (SELECT value FROM json_each(?))",
                (int(experiment_id), dumps(wanted)),
            )
            chosen = {int(row[0]): str(row[1]) for row in candidates}
            if job_ids is not None:
                strays = sorted({int(job_id) for job_id in job_ids} - set(chosen))
                if strays:
                    raise StoreError(
                        f"job(s) {strays[:10]} are not {' or '.join(wanted)} jobs of experiment {experiment_id}"
                    )
                chosen = {job_id: chosen[job_id] for job_id in {int(job_id) for job_id in job_ids}}
            ids = id_list(chosen)
            await db.execute(
                # A quarantined job gets three fresh strikes; it stays a suspect, so it runs alone.
                "UPDATE jobs SET status = 'queued', attempts = 0, last_error = NULL, started_at = NULL, "
                "finished_at = NULL, strikes = 0, backoff_batches = 0, not_before = 0 "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (ids,),
            )
            if "cancelled" in chosen.values():
                await db.execute(
                    "UPDATE experiments SET cancelled_at = NULL WHERE id = ?",
                    (int(experiment_id),),
                )
            await touch_experiments(db, ids, now)
            rows = await fetch_all(
                db,
                _QUEUED + "WHERE j.id IN (SELECT value FROM json_each(?)) ORDER BY j.run_order",  # nosec B608
                (ids,),
            )
        return [QueuedJobRow.from_row(row) for row in rows]
