"""How long the daemon's start-up file check takes with many images, against the full hash check that
`cauldronctl images verify` does, measured side by side on the same files.

Builds a real store (migrations, rows through the jobs repository) and image files of a realistic size in a temp
folder, then runs recovery (what every start does) and the sha256 check over the same images.
Usage: python bench/startup_check.py [--images 100000] [--kib 48]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import tempfile
import time
from pathlib import Path

from harness import machine

from cauldrond.store import Store, recover
from cauldrond.store.integrity import check_files

PER_EXPERIMENT = 1000


def write_files(images_dir: Path, count: int, size: int) -> list[tuple[str, str]]:
    """(relative path, sha256) of ``count`` files of ``size`` random bytes, 1,000 to a folder as the engine does."""
    made = []
    for index in range(count):
        relative = f"exp-{index // PER_EXPERIMENT:06d}/{index % PER_EXPERIMENT:05d}-1.png"
        path = images_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)
        path.write_bytes(data)
        made.append((relative, hashlib.sha256(data).hexdigest()))
    return made


async def fill_store(store: Store, files: list[tuple[str, str]], size: int) -> None:
    """Rows as the engine leaves them (job done, image row), 1,000 per transaction: committing 100,000 images one
    fsynced transaction at a time would take the bench longer than the measurement."""
    for start in range(0, len(files), PER_EXPERIMENT):
        chunk = files[start : start + PER_EXPERIMENT]
        experiment_id, job_ids = await store.experiments.create(
            name="bench", kind="sweep", spec={}, priority=0, cells=[{"prompt": "p"}] * len(chunk)
        )
        async with store.database.write() as db:
            await db.executemany(
                "INSERT INTO images (job_id, experiment_id, path, sha256, size_bytes, seed, params, metadata, "
                "wall_time_s, created_at) VALUES (?, ?, ?, ?, ?, 1, '{}', '{}', 0.1, '2026-11-30T00:00:00Z')",
                [
                    (job_id, experiment_id, path, digest, size)
                    for job_id, (path, digest) in zip(job_ids, chunk, strict=True)
                ],
            )
            await db.execute("UPDATE jobs SET status = 'done' WHERE experiment_id = ?", (experiment_id,))


def drop_page_cache() -> str:
    # A fair comparison reads from disk for both; without root (or on macOS) both read from the cache.
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return "cold (page cache dropped before each)"
    except OSError:
        return "warm (page cache could not be dropped)"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--kib", type=int, default=48, help="file size; a 512x512 SD PNG is ~400 KiB")
    args = parser.parse_args()
    size = args.kib * 1024
    with tempfile.TemporaryDirectory(prefix="cauldron-startup-") as tmp:
        root = Path(tmp)
        images_dir = root / "images"
        started = time.perf_counter()
        files = await asyncio.to_thread(write_files, images_dir, args.images, size)
        store = await Store.open(root / "cauldron.sqlite3")
        await fill_store(store, files, size)
        print(f"machine: {machine()}")
        print(f"{args.images} images of {args.kib} KiB set up in {time.perf_counter() - started:.0f} s")

        cache = drop_page_cache()
        started = time.perf_counter()
        report = await recover(store, images_dir, max_strikes=3)
        startup = time.perf_counter() - started
        assert not report.missing_files and not report.altered_files, report

        drop_page_cache()
        started = time.perf_counter()
        states = await check_files(images_dir, await store.images.files(), full=True)
        full = time.perf_counter() - started
        assert set(states) == {"ok"}
        await store.close()
    print(f"page cache: {cache}")
    print(f"start-up recovery (size check): {startup:7.2f} s  ({startup / args.images * 1e6:.1f} us/image)")
    print(f"images verify (sha256):         {full:7.2f} s  ({full / args.images * 1e6:.1f} us/image)")
    print(f"ratio verify / start-up: {full / startup:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
