"""Migrations on real SQLite files: the final schema, idempotent reopening, and upgrading older databases."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from cauldrond.store import MIGRATIONS, MigrationError, Store, apply_migrations
from cauldrond.store.migrations import Migration

EXPECTED_COLUMNS = {
    "migrations": ["name", "applied_at"],
    "experiments": ["id", "name", "kind", "spec", "priority", "created_at", "updated_at", "cancelled_at"],
    "jobs": [
        "id",
        "experiment_id",
        "idx",
        "params",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "started_at",
        "finished_at",
        "run_order",
        "suspect",
        "strikes",
        "solo_at_work_at",
        "backoff_batches",
        "not_before",
        "solo_uptime_s",
    ],
    "images": [
        "id",
        "job_id",
        "experiment_id",
        "path",
        "sha256",
        "size_bytes",
        "seed",
        "params",
        "metadata",
        "wall_time_s",
        "peak_memory_bytes",
        "created_at",
        "favorite",
        "rating",
        "deleted_at",
    ],
    "annotations": ["image_id", "plugin", "key", "value", "created_at"],
    "tokens": ["id", "name", "token_hash", "created_at", "last_used_at", "revoked_at"],
    "plugin_runs": ["image_id", "plugin", "status", "error", "duration_s", "finished_at"],
    "prompt_history": ["id", "prompt", "negative_prompt", "uses", "last_used_at"],
    "id_floors": ["name", "floor"],
    "model_hashes": ["path", "size_bytes", "mtime_ns", "sha256", "hashed_at"],
    "batch_sizes": ["model", "width", "height", "device", "batch_size", "images_per_s", "probed_up_to", "measured_at"],
    "extra_network_hashes": ["path", "algorithm", "size_bytes", "mtime_ns", "sha256", "hashed_at"],
}
EXPECTED_INDEXES = {
    "jobs_by_status",
    "jobs_by_experiment_status",
    "images_by_experiment",
    "plugin_runs_by_plugin_status",
    "jobs_backing_off",
    "images_favorites",
    "images_trashed",
    "images_by_model",
    "prompt_history_recent",
}


def schema(path: Path) -> dict[str, list[str]]:
    with sqlite3.connect(path) as db:
        tables = [
            row[0]
            for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {table: [col[1] for col in db.execute(f"PRAGMA table_info({table})")] for table in tables}


def index_names(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}


def applied(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT name FROM migrations ORDER BY rowid")]


async def test_a_new_database_gets_the_full_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "cauldron.sqlite3"
    store = await Store.open(path)
    await store.close()

    assert schema(path) == {table: EXPECTED_COLUMNS[table] for table in sorted(EXPECTED_COLUMNS)}
    assert index_names(path) >= EXPECTED_INDEXES
    assert applied(path) == [name for name, _ in MIGRATIONS]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_reopening_applies_nothing_new(tmp_path: Path) -> None:
    path = tmp_path / "cauldron.sqlite3"
    store = await Store.open(path)
    await store.experiments.create(name="keep", kind="grid", spec={}, priority=0, cells=[{"prompt": "a"}])
    await store.close()
    before = applied(path)
    with sqlite3.connect(path) as db:
        stamps = db.execute("SELECT name, applied_at FROM migrations").fetchall()

    async with aiosqlite.connect(path, isolation_level=None) as db:
        assert await apply_migrations(db) == []
    store = await Store.open(path)
    assert [e.name for e in await store.experiments.page(10, 0)] == ["keep"]
    await store.close()

    assert applied(path) == before
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name, applied_at FROM migrations").fetchall() == stamps


@pytest.mark.parametrize("first", range(1, len(MIGRATIONS)))
async def test_a_database_with_only_the_first_migrations_is_upgraded(tmp_path: Path, first: int) -> None:
    path = tmp_path / "old.sqlite3"
    async with aiosqlite.connect(path, isolation_level=None) as db:
        assert await apply_migrations(db, MIGRATIONS[:first]) == [name for name, _ in MIGRATIONS[:first]]
        # Data written by the older version must survive the upgrade.
        await db.execute(
            "INSERT INTO experiments (name, kind, spec, priority, created_at, updated_at) "
            "VALUES ('old', 'grid', '{}', 3, '2024-01-01T00:00:00+00:00', '2024-01-01T00:00:00+00:00')"
        )
        await db.execute(
            "INSERT INTO jobs (experiment_id, idx, params, created_at) "
            "VALUES (1, 0, '{\"prompt\": \"x\"}', '2024-01-01T00:00:00+00:00')"
        )
    assert applied(path) == [name for name, _ in MIGRATIONS[:first]]

    store = await Store.open(path)
    experiment = await store.experiments.get(1)
    queued = await store.jobs.queued()
    await store.close()

    assert schema(path) == {table: EXPECTED_COLUMNS[table] for table in sorted(EXPECTED_COLUMNS)}
    assert index_names(path) >= EXPECTED_INDEXES
    assert applied(path) == [name for name, _ in MIGRATIONS]
    assert experiment is not None and experiment.name == "old" and experiment.counts["queued"] == 1
    assert [(job.job_id, job.priority, job.params) for job in queued] == [(1, 3, {"prompt": "x"})]


async def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite3"
    store = await Store.open(path)
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO migrations (name, applied_at) VALUES ('9999_from_the_future', 'x')")

    with pytest.raises(MigrationError, match="9999_from_the_future"):
        await Store.open(path)


async def test_a_failing_migration_leaves_no_trace(tmp_path: Path) -> None:
    async def half_done(db: aiosqlite.Connection) -> None:
        await db.execute("CREATE TABLE half (x INTEGER)")
        raise RuntimeError("boom")

    broken: list[Migration] = [*MIGRATIONS[:1], ("0002_half", half_done)]
    path = tmp_path / "broken.sqlite3"
    async with aiosqlite.connect(path, isolation_level=None) as db:
        with pytest.raises(RuntimeError, match="boom"):
            await apply_migrations(db, broken)
        assert not db.in_transaction

    assert "half" not in schema(path)
    assert applied(path) == [MIGRATIONS[0][0]]


async def test_the_gallery_migration_keeps_old_prompts_and_checks_ratings(tmp_path: Path) -> None:
    path = tmp_path / "before-gallery.sqlite3"
    names = [name for name, _ in MIGRATIONS]
    before = MIGRATIONS[: names.index("0009_gallery")]
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await apply_migrations(db, before)
        for experiment_id, day in ((1, "01"), (2, "02")):
            await db.execute(
                "INSERT INTO experiments (id, name, kind, spec, priority, created_at, updated_at) "
                f"VALUES ({experiment_id}, 'old', 'grid', '{{}}', 0, '2024-01-{day}T00:00:00+00:00', 'x')"
            )
        cells = [(1, 0, "a cat", "blurry"), (1, 1, "a cat", "blurry"), (2, 0, "a cat", "blurry"), (2, 1, "a dog", None)]
        for experiment_id, idx, prompt, negative in cells:
            params = {"prompt": prompt} | ({"negative_prompt": negative} if negative else {})
            await db.execute(
                "INSERT INTO jobs (experiment_id, idx, params, created_at) VALUES (?, ?, ?, 'x')",
                (experiment_id, idx, json.dumps(params)),
            )

    store = await Store.open(path)
    await store.close()
    with sqlite3.connect(path) as db:
        history = db.execute(
            "SELECT prompt, negative_prompt, uses, last_used_at FROM prompt_history ORDER BY prompt"
        ).fetchall()
        # Two experiments used the cat pair (twice in the first): two uses, last on the 2nd.
        assert history == [
            ("a cat", "blurry", 2, "2024-01-02T00:00:00+00:00"),
            ("a dog", "", 1, "2024-01-02T00:00:00+00:00"),
        ]
        db.execute(
            "INSERT INTO images (job_id, experiment_id, path, sha256, size_bytes, seed, params, metadata, "
            "wall_time_s, created_at) VALUES (1, 1, 'a.png', 'h', 1, 1, '{}', '{}', 0, 'x')"
        )
        for column, value in (("rating", 0), ("rating", 6), ("favorite", 2)):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
                db.execute(f"UPDATE images SET {column} = ?", (value,))
        assert db.execute("SELECT favorite, rating, deleted_at FROM images").fetchall() == [(0, None, None)]
