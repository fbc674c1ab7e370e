"""Bookkeeping at scale: creating a 10,000-cell experiment (target: returns in under 1 s), and the p99 of a
queue.list page and an images.list page with 100,000 images in the store (target: under 10 ms each).

The 100,000 image rows are inserted straight into the store (no generation), with the queue paused so the engine
stays idle and only the bookkeeping is measured.

    .venv/bin/python bench/enqueue.py
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time

from harness import machine, running_daemon

CALLS = 200


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


async def main() -> None:
    async with running_daemon() as bench:
        client = bench.client
        await client.call("queue.pause")
        started = time.perf_counter()
        created = await client.call(
            "experiments.create",
            name="10k",
            base={"prompt": "p", "width": 64, "height": 64, "steps": 2},
            axes={"seed": "1-100", "cfg_scale": "1-10 [100]"},
        )
        create_s = time.perf_counter() - started
        assert created["experiment"]["counts"]["total"] == 10_000

        store = bench.daemon.services.store if bench.daemon.services else None
        assert store is not None
        filler, jobs = await store.experiments.create(
            name="filler", kind="bench", spec={}, priority=-1000, cells=[{"prompt": "p"}] * 100_000
        )
        started = time.perf_counter()
        # Straight SQL through a second connection (WAL allows it): 100,000 generations are not the point here.
        with sqlite3.connect(bench.daemon.settings.database_path) as db:
            db.executemany(
                "INSERT INTO images (job_id, experiment_id, path, sha256, size_bytes, seed, params, metadata, "
                "wall_time_s, created_at) VALUES (?, ?, ?, ?, 1, 1, '{}', '{}', 0.1, '2026-01-01T00:00:00Z')",
                [(job_id, filler, f"bench/{job_id}.png", f"{job_id:064x}") for job_id in jobs],
            )
            db.execute("UPDATE jobs SET status = 'done' WHERE experiment_id = ?", (filler,))
        fill_s = time.perf_counter() - started

        async def timed(method: str, **params: object) -> list[float]:
            samples = []
            for _ in range(CALLS):
                t0 = time.perf_counter()
                await client.call(method, **params)
                samples.append((time.perf_counter() - t0) * 1000)
            return samples

        queue_page = await timed("queue.list", limit=100, offset=5000)
        images_first = await timed("images.list", limit=100)
        images_deep = await timed("images.list", experiment_id=filler, limit=100, after_id=jobs[0] + 90_000)
    print(f"machine: {machine()}")
    print(
        f"experiments.create, 10,000 cells: {create_s * 1000:7.1f} ms   target < 1000 ms: "
        f"{'met' if create_s < 1 else 'NOT met'}"
    )
    print(f"(100,000 image rows inserted directly in {fill_s:.1f} s)")
    for name, samples in [
        ("queue.list page", queue_page),
        ("images.list first page", images_first),
        ("images.list page at 90,000", images_deep),
    ]:
        print(
            f"{name:28s} p50 {statistics.median(samples):6.2f} ms  p99 {p99(samples):6.2f} ms   target p99 < 10 ms: "
            f"{'met' if p99(samples) < 10 else 'NOT met'}"
        )


if __name__ == "__main__":
    asyncio.run(main())
