"""How the gallery's first page (images.list, newest first, 100 a page) costs with many images against few, and
a deep page and filtered pages, measured side by side in one run on stores built the same way.

Rows go in as the engine leaves them (1,000 images per experiment, every 5th a favourite, every 7th trashed,
so every query returns a full page in both stores),
written in large transactions so that building 100,000 takes seconds. Each query is the store's own
(``store.images.gallery``, what ``images.list`` calls), run 30 times on each store in turn; the medians are shown.
Usage: python bench/gallery_page.py [--small 1000] [--large 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from harness import machine

from cauldrond.store import Store
from cauldrond.store.gallery import GalleryFilter

PER_EXPERIMENT = 1000
RUNS = 30


async def build(path: Path, count: int) -> Store:
    store = await Store.open(path)
    for start in range(0, count, PER_EXPERIMENT):
        size = min(PER_EXPERIMENT, count - start)
        experiment_id, job_ids = await store.experiments.create(
            name="bench", kind="sweep", spec={}, priority=0, cells=[{"prompt": "p"}] * size
        )
        rows = []
        for offset, job_id in enumerate(job_ids):
            n = start + offset
            params = json.dumps({"model": f"model-{n % 3}", "sampler": "Euler a", "prompt": "p", "steps": 20})
            rows.append((job_id, experiment_id, f"exp/{n}.png", params, int(n % 5 == 0), "t" if n % 7 == 0 else None))
        async with store.database.write() as db:
            await db.executemany(
                "INSERT INTO images (job_id, experiment_id, path, sha256, size_bytes, seed, params, metadata, "
                "wall_time_s, created_at, favorite, deleted_at) VALUES (?, ?, ?, 'h', 1, 1, ?, '{}', 0.1, 't', ?, ?)",
                rows,
            )
            await db.execute("UPDATE jobs SET status = 'done' WHERE experiment_id = ?", (experiment_id,))
    return store


async def once(store: Store, query: GalleryFilter, after_id: int | None) -> float:
    started = time.perf_counter()
    rows = await store.images.gallery(query, limit=101, after_id=after_id, newest=True)
    elapsed = time.perf_counter() - started
    assert len(rows) == 101, (query, len(rows))
    return elapsed


QUERIES = {
    "first page": (GalleryFilter(), None),
    # The last page but one: 250 images from the oldest (in the large store, 99.75% of the way down).
    "deep page": (GalleryFilter(), 250),
    "favourites": (GalleryFilter(favorite=True), None),
    "one model": (GalleryFilter(model="model-1"), None),
    "one experiment": (GalleryFilter(experiment_id=1), None),
    "the trash": (GalleryFilter(trashed=True), None),
}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="cauldron-gallery-") as tmp:
        stores = {}
        for count in (args.small, args.large):
            started = time.perf_counter()
            stores[count] = await build(Path(tmp) / f"{count}.sqlite3", count)
            print(f"{count} images set up in {time.perf_counter() - started:.0f} s")
        print(f"{'query (101 rows)':<20}{args.small:>10,} imgs{args.large:>12,} imgs{'ratio':>8}   (median of {RUNS})")
        for name, (query, after_id) in QUERIES.items():
            times: dict[int, list[float]] = {args.small: [], args.large: []}
            for _ in range(RUNS):  # alternating, so a busy moment on the machine hits both alike
                for count, store in stores.items():
                    times[count].append(await once(store, query, after_id))
            small, large = (statistics.median(times[c]) * 1000 for c in (args.small, args.large))
            print(f"{name:<20}{small:>12.2f} ms{large:>13.2f} ms{large / small:>7.2f}x")
        for store in stores.values():
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
