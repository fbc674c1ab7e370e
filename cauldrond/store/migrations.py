"""Schema migrations: an append-only list of named functions, each applied once, in order, in its own
transaction.

Never edit or reorder a migration that has shipped: a database records the names it has applied, and a changed
migration would silently leave old databases with a different schema from new ones. Add a new one at the end.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import aiosqlite

log = logging.getLogger(__name__)

Migration = tuple[str, Callable[[aiosqlite.Connection], Awaitable[None]]]


class MigrationError(RuntimeError):
    """The database cannot be brought to this version's schema."""


async def _run(db: aiosqlite.Connection, *statements: str) -> None:
    # One execute per statement: executescript would COMMIT first and break the migration's transaction.
    for statement in statements:
        await db.execute(statement)


async def _experiments_and_jobs(db: aiosqlite.Connection) -> None:
    await _run(
        db,
        """
        CREATE TABLE experiments (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            spec TEXT NOT NULL,
            priority INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            cancelled_at TEXT
        )
        """,
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            params TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            UNIQUE (experiment_id, idx)
        )
        """,
    )


async def _images_and_annotations(db: aiosqlite.Connection) -> None:
    await _run(
        db,
        """
        CREATE TABLE images (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL UNIQUE REFERENCES jobs(id) ON DELETE CASCADE,
            experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
            path TEXT NOT NULL UNIQUE,
            sha256 TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            seed INTEGER NOT NULL,
            params TEXT NOT NULL,
            metadata TEXT NOT NULL,
            wall_time_s REAL NOT NULL,
            peak_memory_bytes INTEGER,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE annotations (
            image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
            plugin TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (image_id, plugin, key)
        )
        """,
    )


async def _tokens(db: aiosqlite.Connection) -> None:
    await _run(
        db,
        """
        CREATE TABLE tokens (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            last_used_at TEXT,
            revoked_at TEXT
        )
        """,
    )


async def _query_indexes(db: aiosqlite.Connection) -> None:
    await _run(
        db,
        # Start-up rebuild of the queue, reaping running jobs and the global status counts.
        "CREATE INDEX jobs_by_status ON jobs (status, experiment_id, idx)",
        # Per-experiment counts read only this covering index, never the params column.
        "CREATE INDEX jobs_by_experiment_status ON jobs (experiment_id, status)",
        # Keyset pagination of one experiment's images.
        "CREATE INDEX images_by_experiment ON images (experiment_id, id)",
    )


async def _job_run_order(db: aiosqlite.Connection) -> None:
    # idx stays the cell's place in the experiment's axes (its grid coordinates); run_order is where the planner
    # put it so that each model loads once and batchable cells sit side by side.
    await _run(
        db,
        "ALTER TABLE jobs ADD COLUMN run_order INTEGER",
        "UPDATE jobs SET run_order = idx",
        "DROP INDEX jobs_by_status",
        "CREATE INDEX jobs_by_status ON jobs (status, experiment_id, run_order)",
    )


async def _plugin_runs(db: aiosqlite.Connection) -> None:
    # The latest post-processing outcome per image and plugin; annotations hold what a successful run found.
    await _run(
        db,
        """
        CREATE TABLE plugin_runs (
            image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
            plugin TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'timeout')),
            error TEXT,
            duration_s REAL NOT NULL,
            finished_at TEXT NOT NULL,
            PRIMARY KEY (image_id, plugin)
        )
        """,
        # images.search walks annotations by image; the primary key already leads with image_id.
        "CREATE INDEX plugin_runs_by_plugin_status ON plugin_runs (plugin, status)",
    )


async def _crash_guard(db: aiosqlite.Connection) -> None:
    # The crash guard (docs/architecture.md, Durability). suspect: was running when the daemon died, so it runs
    # alone until it finishes; strikes: deaths while it ran alone with its own work begun; solo_at_work_at: when
    # that work began in the current run (the evidence, cleared at each start); backoff_batches and not_before
    # (epoch seconds): a struck suspect waits for that many other batches and that time.
    await _run(
        db,
        "ALTER TABLE jobs ADD COLUMN suspect INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN strikes INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN solo_at_work_at TEXT",
        "ALTER TABLE jobs ADD COLUMN backoff_batches INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN not_before REAL NOT NULL DEFAULT 0",
        # Each batch start counts down the few waiting suspects; this keeps that O(waiting).
        "CREATE INDEX jobs_backing_off ON jobs (id) WHERE backoff_batches > 0",
    )


async def _crash_guard_uptime(db: aiosqlite.Connection) -> None:
    # How long after its daemon started a suspect began its own work alone (its latest run with evidence): a
    # struck suspect waits longer than that into each later life, away from kills that come soon after a start.
    await _run(db, "ALTER TABLE jobs ADD COLUMN solo_uptime_s REAL NOT NULL DEFAULT 0")


async def _gallery(db: aiosqlite.Connection) -> None:
    # The gallery's marks on an image (favourite, a 1-5 rating, the trash) and the prompts people typed.
    # deleted_at set: the image is in the trash, its file under <data_dir>/trash/images/ (cauldrond/media/trash.py).
    await _run(
        db,
        "ALTER TABLE images ADD COLUMN favorite INTEGER NOT NULL DEFAULT 0 CHECK (favorite IN (0, 1))",
        "ALTER TABLE images ADD COLUMN rating INTEGER CHECK (rating IS NULL OR rating BETWEEN 1 AND 5)",
        "ALTER TABLE images ADD COLUMN deleted_at TEXT",
        # Newest first pages walk the primary key; these keep the filtered pages and the trash index seeks too.
        "CREATE INDEX images_favorites ON images (id) WHERE favorite = 1 AND deleted_at IS NULL",
        "CREATE INDEX images_trashed ON images (id) WHERE deleted_at IS NOT NULL",
        "CREATE INDEX images_by_model ON images (json_extract(params, '$.model'), id)",
        """
        CREATE TABLE prompt_history (
            id INTEGER PRIMARY KEY,
            prompt TEXT NOT NULL,
            negative_prompt TEXT NOT NULL DEFAULT '',
            uses INTEGER NOT NULL DEFAULT 1,
            last_used_at TEXT NOT NULL,
            UNIQUE (prompt, negative_prompt)
        )
        """,
        "CREATE INDEX prompt_history_recent ON prompt_history (last_used_at, id)",
        # The experiments made before this version count too: one use per experiment that used the pair.
        "INSERT INTO prompt_history (prompt, negative_prompt, uses, last_used_at) "
        "SELECT json_extract(j.params, '$.prompt'), COALESCE(json_extract(j.params, '$.negative_prompt'), ''), "
        "COUNT(DISTINCT j.experiment_id), MAX(e.created_at) FROM jobs j JOIN experiments e ON e.id = j.experiment_id "
        "WHERE json_extract(j.params, '$.prompt') IS NOT NULL GROUP BY 1, 2",
    )


async def _image_ids_never_reused(db: aiosqlite.Connection) -> None:
    # SQLite hands out MAX(id) + 1, so deleting the newest image (trash.empty, a lost file) would give its id to
    # the next one, and browsers keep /images/<id>.png and /thumbs/<size>/<id>.webp as immutable. The floor
    # remembers the highest id ever deleted; store/jobs.py numbers new images above it.
    await _run(
        db,
        "CREATE TABLE id_floors (name TEXT PRIMARY KEY, floor INTEGER NOT NULL)",
        "INSERT INTO id_floors (name, floor) SELECT 'images', COALESCE(MAX(id), 0) FROM images",
        "CREATE TRIGGER images_id_floor AFTER DELETE ON images BEGIN "
        "UPDATE id_floors SET floor = MAX(floor, OLD.id) WHERE name = 'images'; END",
    )


async def _model_hashes(db: aiosqlite.Connection) -> None:
    # A model file's sha256 (A1111's "Model hash" is its first 10 hex digits), kept while the file's size and
    # mtime stay as they were: hashing a 7 GB checkpoint takes a minute, so it is done once per file version.
    await _run(
        db,
        "CREATE TABLE model_hashes (path TEXT PRIMARY KEY, size_bytes INTEGER NOT NULL, "
        "mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL, hashed_at TEXT NOT NULL)",
    )


async def _batch_sizes(db: aiosqlite.Connection) -> None:
    # The batch size the engine measured as best per (model, image size, device) (engine/batch_sizing.py), so a
    # restart does not probe again. ``probed_up_to`` is the max_batch_size it was measured under: a higher bound
    # set later calls for a new probe only where the old bound was the one that stopped it.
    await _run(
        db,
        "CREATE TABLE batch_sizes (model TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, "
        "device TEXT NOT NULL, batch_size INTEGER NOT NULL CHECK (batch_size >= 1), images_per_s REAL NOT NULL, "
        "probed_up_to INTEGER NOT NULL, measured_at TEXT NOT NULL, PRIMARY KEY (model, width, height, device))",
    )


async def _extra_network_hashes(db: aiosqlite.Connection) -> None:
    # LoRA, VAE and embedding hashes as A1111 writes them ("Lora hashes", "VAE hash", "TI hashes"), kept while the
    # file's size and mtime stay as they were, so a restart does not read every file again. A LoRA's is the sha256
    # of its tensor data, a VAE's or embedding's of the whole file: the algorithm is part of the key.
    await _run(
        db,
        "CREATE TABLE extra_network_hashes (path TEXT NOT NULL, algorithm TEXT NOT NULL, "
        "size_bytes INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL, hashed_at TEXT NOT NULL, "
        "PRIMARY KEY (path, algorithm))",
    )


# Append only. The name is the identity recorded in the database.
MIGRATIONS: tuple[Migration, ...] = (
    ("0001_experiments_and_jobs", _experiments_and_jobs),
    ("0002_images_and_annotations", _images_and_annotations),
    ("0003_tokens", _tokens),
    ("0004_query_indexes", _query_indexes),
    ("0005_job_run_order", _job_run_order),
    ("0006_plugin_runs", _plugin_runs),
    ("0007_crash_guard", _crash_guard),
    ("0008_crash_guard_uptime", _crash_guard_uptime),
    ("0009_gallery", _gallery),
    ("0010_image_ids_never_reused", _image_ids_never_reused),
    ("0011_model_hashes", _model_hashes),
    ("0012_batch_sizes", _batch_sizes),
    ("0013_extra_network_hashes", _extra_network_hashes),
)


async def applied_migrations(db: aiosqlite.Connection) -> list[str]:
    async with db.execute("SELECT name FROM migrations ORDER BY rowid") as cursor:
        return [str(row[0]) for row in await cursor.fetchall()]


async def apply_migrations(db: aiosqlite.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply the migrations this database lacks; return their names. ``db`` must be in autocommit mode
    (``isolation_level=None``) so each migration's BEGIN/COMMIT is ours."""
    await db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    known = {name for name, _ in migrations}
    unknown = [name for name in await applied_migrations(db) if name not in known]
    if unknown:
        raise MigrationError(
            f"the database has migrations this version does not know ({', '.join(unknown)}); "
            "it was written by a newer cauldrond"
        )
    already = set(await applied_migrations(db))
    newly_applied = []
    for name, migrate in migrations:
        if name in already:
            continue
        # IMMEDIATE takes the write lock first; the second look inside it stops two processes opening one
        # file from both applying a migration.
        try:
            await db.execute("BEGIN IMMEDIATE")
            async with db.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)) as cursor:
                done = await cursor.fetchone() is not None
            if not done:
                await migrate(db)
                await db.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                    (name, datetime.now(UTC).isoformat(timespec="milliseconds")),
                )
            await db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error, ValueError):
                await db.execute("ROLLBACK")
            raise
        if not done:
            log.info("applied database migration %s", name)
            newly_applied.append(name)
    return newly_applied
