"""The store side of plugins: run records per image and plugin, and searching annotations across many rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cauldrond.store import Store
from tests.store.test_store import finish, make


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "cauldron.sqlite3")
    try:
        yield opened
    finally:
        await opened.close()


async def images(store: Store, count: int) -> list[int]:
    _, job_ids = await make(store, count)
    return [await finish(store, job_id, f"exp/{n}.png") for n, job_id in enumerate(job_ids)]


async def test_latest_run_per_image_and_plugin(store: Store) -> None:
    (image_id,) = await images(store, 1)
    await store.plugin_runs.record(image_id, "tagger", "timeout", "no result within 1 s", 1.0, "t1")
    await store.plugin_runs.record(image_id, "tagger", "ok", None, 0.5, "t2")
    await store.plugin_runs.record(image_id, "other", "failed", "boom", 0.1, "t3")
    await store.plugin_runs.record(999, "tagger", "ok", None, 0.1, "t4")  # no such image: nothing recorded
    runs = [run.to_dict() for run in await store.plugin_runs.get(image_id)]
    assert runs == [
        {"image_id": image_id, "plugin": "other", "status": "failed", "error": "boom", "duration_s": 0.1,
         "finished_at": "t3"},
        {"image_id": image_id, "plugin": "tagger", "status": "ok", "error": None, "duration_s": 0.5,
         "finished_at": "t2"},
    ]  # fmt: skip
    assert await store.plugin_runs.get(999) == []
    with pytest.raises(ValueError):
        await store.plugin_runs.record(image_id, "tagger", "maybe", None, 0.1, "t5")


async def test_tag_search_pages_past_many_near_misses(store: Store) -> None:
    ids = await images(store, 130)
    for n, image_id in enumerate(ids):
        # "seashore" contains "sea" but is another tag: LIKE finds it, the exact comparison drops it.
        tags = "sea, boat" if n % 40 == 39 else "seashore"
        await store.annotations.save(image_id, "tagger", {"tags": tags, "description": f"Picture number {n}"})
    wanted = [ids[39], ids[79], ids[119]]
    assert [
        row.id for row in await store.annotations.search_images(words=[], tag="SEA", limit=10, after_id=None)
    ] == wanted
    page = await store.annotations.search_images(words=[], tag="sea", limit=2, after_id=None)
    assert [row.id for row in page] == wanted[:2]
    rest = await store.annotations.search_images(words=[], tag="sea", limit=2, after_id=page[-1].id)
    assert [row.id for row in rest] == wanted[2:]
    found = await store.annotations.search_images(words=["NUMBER", "79"], tag=None, limit=10, after_id=None)
    assert [row.id for row in found] == [ids[79]]
    assert await store.annotations.search_images(words=["number_"], tag=None, limit=10, after_id=None) == []
