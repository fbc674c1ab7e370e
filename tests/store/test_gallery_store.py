"""The gallery's query on a real database: filters pick what a hand count says, pages are keyset range seeks
(the query plan of the first page at 100,000 images uses an index, never a table scan), and the prompt history
outlives the store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cauldrond.store import Store
from cauldrond.store.gallery import GalleryFilter, page_sql
from cauldrond.store.timestamps import utc_now
from tests.waiting import until

ROWS = 100_000


async def until_the_clock_moves(since: str) -> None:
    async def moved() -> bool:
        return utc_now() != since

    await until(moved, timeout=5.0, interval=0.001)


def insert_images(path: Path, images: list[dict[str, Any]]) -> None:
    """Rows as the engine commits them (one experiment per 1,000 images), written straight with sqlite3."""
    with sqlite3.connect(path) as db:
        experiments = sorted({image["experiment_id"] for image in images})
        db.executemany(
            "INSERT INTO experiments (id, name, kind, spec, priority, created_at, updated_at) "
            "VALUES (?, 'e', 'grid', '{}', 0, 't', 't')",
            [(e,) for e in experiments],
        )
        db.executemany(
            "INSERT INTO jobs (id, experiment_id, idx, params, status, created_at) VALUES (?, ?, ?, '{}', 'done', 't')",
            [(n + 1, image["experiment_id"], n) for n, image in enumerate(images)],
        )
        db.executemany(
            "INSERT INTO images (id, job_id, experiment_id, path, sha256, size_bytes, seed, params, metadata, "
            "wall_time_s, created_at, favorite, rating, deleted_at) "
            "VALUES (?, ?, ?, ?, 'h', 1, 1, ?, '{}', 0, 't', ?, ?, ?)",
            [
                (
                    n + 1,
                    n + 1,
                    image["experiment_id"],
                    f"exp/{n}.png",
                    json.dumps(image["params"]),
                    int(image.get("favorite", False)),
                    image.get("rating"),
                    image.get("deleted_at"),
                )
                for n, image in enumerate(images)
            ],
        )


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    opened = await Store.open(tmp_path / "cauldron.sqlite3")
    await opened.close()
    return opened


def plan(path: Path, query: GalleryFilter, *, newest: bool = True) -> str:
    sql, params = page_sql(query, newest=newest)
    with sqlite3.connect(path) as db:
        details = db.execute(f"EXPLAIN QUERY PLAN {sql}", [*params, 2**63 - 1, 101]).fetchall()
    return " | ".join(str(row[3]) for row in details)


async def test_first_pages_at_100000_images_seek_an_index(tmp_path: Path) -> None:
    path = tmp_path / "cauldron.sqlite3"
    await (await Store.open(path)).close()
    images = [
        {
            "experiment_id": n // 1000 + 1,
            "params": {"model": f"m{n % 3}", "sampler": "Euler a", "schedule": "Automatic", "prompt": "p"},
            "favorite": n % 97 == 0,
            "deleted_at": "t" if n % 50 == 0 else None,
        }
        for n in range(ROWS)
    ]
    insert_images(path, images)

    # Each page seeks the primary key or the index made for its filter (migration 0009_gallery).
    for query, seek in (
        (GalleryFilter(), "INTEGER PRIMARY KEY"),
        (GalleryFilter(experiment_id=7), "INDEX images_by_experiment"),
        (GalleryFilter(favorite=True), "INDEX images_favorites"),
        (GalleryFilter(model="m1"), "INDEX images_by_model"),
        (GalleryFilter(trashed=True), "INDEX images_trashed"),
    ):
        for newest in (True, False):
            shown = plan(path, query, newest=newest)
            # SQLite writes SEARCH for a range seek on the primary key or an index and SCAN for a walk of a table.
            assert shown.startswith(f"SEARCH images USING {seek}"), (query, shown)
            assert "SCAN" not in shown, (query, shown)

    store = await Store.open(path)
    try:
        first = await store.images.gallery(GalleryFilter(), limit=100, after_id=None, newest=True)
        # Hand count: ids 100,000 down; every id n + 1 with n % 50 == 0 (ids 99,951, 99,901) is in the trash.
        expected = [i for i in range(ROWS, 0, -1) if (i - 1) % 50 != 0][:100]
        assert [row.id for row in first] == expected
        second = await store.images.gallery(GalleryFilter(), limit=100, after_id=first[-1].id, newest=True)
        assert second[0].id == expected[-1] - 1
    finally:
        await store.close()


SAMPLERS = [("Euler a", "Automatic"), ("DPM++ 2M", "Karras"), ("DPM++ 2M", "Automatic"), ("DPM++ 2M", "Exponential")]


async def test_filters_pick_what_a_hand_count_says(tmp_path: Path) -> None:
    path = tmp_path / "cauldron.sqlite3"
    await (await Store.open(path)).close()
    images = []
    for n in range(24):
        sampler, schedule = SAMPLERS[n % 4]
        images.append(
            {
                "experiment_id": 1 if n < 12 else 2,
                "params": {"model": "tiny" if n % 2 else "big", "sampler": sampler, "schedule": schedule},
                "favorite": n % 5 == 0,
                "rating": (n % 6) or None,
                "deleted_at": "t" if n == 23 else None,
            }
        )
    insert_images(path, images)
    ids = {n + 1 for n in range(23)}  # image 24 (n = 23) is in the trash

    def pick(condition: Any) -> list[int]:
        return sorted((i for i in ids if condition(i - 1)), reverse=True)

    store = await Store.open(path)
    try:

        async def listed(**fields: Any) -> list[int]:
            rows = await store.images.gallery(GalleryFilter(**fields), limit=100, after_id=None, newest=True)
            return [row.id for row in rows]

        assert await listed() == pick(lambda n: True)
        assert await listed(experiment_id=2) == pick(lambda n: n >= 12)
        assert await listed(model="tiny") == pick(lambda n: n % 2)
        # A1111's combined name is one sampler with one schedule; the bare sampler name is every schedule of it.
        assert await listed(sampler="DPM++ 2M Karras") == pick(lambda n: n % 4 == 1)
        assert await listed(sampler="DPM++ 2M") == pick(lambda n: n % 4 in (1, 2, 3))
        assert await listed(sampler="Euler a") == pick(lambda n: n % 4 == 0)
        assert await listed(favorite=True) == pick(lambda n: n % 5 == 0)
        assert await listed(favorite=False) == pick(lambda n: n % 5 != 0)
        assert await listed(min_rating=4) == pick(lambda n: n % 6 >= 4)
        assert await listed(model="big", min_rating=2, experiment_id=1) == pick(
            lambda n: n % 2 == 0 and n % 6 >= 2 and n < 12
        )
        assert await listed(trashed=True) == [24]
        oldest = await store.images.gallery(GalleryFilter(), limit=5, after_id=3, newest=False)
        assert [row.id for row in oldest] == [4, 5, 6, 7, 8]
    finally:
        await store.close()


async def test_prompt_history_counts_uses_searches_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "cauldron.sqlite3"
    store = await Store.open(path)
    made = [
        [{"prompt": "a red fox", "negative_prompt": "blurry"}, {"prompt": "a red fox", "negative_prompt": "blurry"}],
        [{"prompt": "a blue whale"}],
        [{"prompt": "a red fox", "negative_prompt": "blurry"}, {"prompt": "a red fox", "negative_prompt": ""}],
    ]
    for cells in made:
        # Uses are ordered by their millisecond timestamps: let the clock move on between experiments.
        await until_the_clock_moves(utc_now())
        await store.experiments.create(name="e", kind="generate", spec={}, priority=0, cells=cells)
    await store.close()

    store = await Store.open(path)
    try:
        history = [(r.prompt, r.negative_prompt, r.uses) for r in await store.prompts.history(words=[], limit=10)]
        # Newest use first; the third experiment used both fox pairs (its order breaks the tie); the pair used by
        # two experiments counts two uses, however many of their cells used it.
        assert history == [("a red fox", "", 1), ("a red fox", "blurry", 2), ("a blue whale", "", 1)]
        found = await store.prompts.history(words=["RED", "fox"], limit=10)
        assert [(r.prompt, r.negative_prompt) for r in found] == [("a red fox", ""), ("a red fox", "blurry")]
        assert await store.prompts.history(words=["whale", "fox"], limit=10) == []
        assert [r.prompt for r in await store.prompts.history(words=["100%"], limit=10)] == []
        assert len(await store.prompts.history(words=[], limit=1)) == 1
    finally:
        await store.close()


async def test_tag_and_word_filters_read_the_annotations(tmp_path: Path) -> None:
    path = tmp_path / "cauldron.sqlite3"
    await (await Store.open(path)).close()
    insert_images(path, [{"experiment_id": 1, "params": {"model": "m"}} for _ in range(5)])
    store = await Store.open(path)
    try:
        await store.annotations.save(1, "tagger", {"tags": "cat, dog", "caption": "A cat on a red sofa"})
        await store.annotations.save(2, "tagger", {"tags": "category, Cat ", "caption": "a chart"})
        await store.annotations.save(3, "tagger", {"tags": "category", "caption": "a red cat"})
        await store.annotations.save(4, "tagger", {"tags": "cat"})
        with sqlite3.connect(path) as db:
            db.execute("UPDATE images SET deleted_at = 't' WHERE id = 4")

        async def listed(**fields: Any) -> list[int]:
            rows = await store.images.gallery(GalleryFilter(**fields), limit=10, after_id=None, newest=False)
            return [row.id for row in rows]

        # A tag is a whole entry of the comma list, any case: "category" is not "cat"; 4 is in the trash.
        assert await listed(tag="cat") == [1, 2]
        assert await listed(tag="category") == [2, 3]
        assert await listed(words=("red", "CAT")) == [1, 3]
        assert await listed(words=("red",), tag="cat") == [1]
        assert await listed(words=("sofa", "chart")) == []
    finally:
        await store.close()
