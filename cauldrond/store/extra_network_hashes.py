"""LoRA, VAE and embedding file hashes, remembered per file version (path, size, mtime) and hash algorithm.

A LoRA's A1111 hash is the sha256 of its tensor data (the bytes after the safetensors header), a VAE's and an
embedding's the sha256 of the whole file: two algorithms, so one file may have a row for each.
"""

from __future__ import annotations

from cauldrond.store.database import Database, fetch_one
from cauldrond.store.timestamps import utc_now


class ExtraNetworkHashRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, path: str, algorithm: str, size_bytes: int, mtime_ns: int) -> str | None:
        """The sha256 recorded for ``path`` by ``algorithm`` at this size and mtime; None when unknown or changed."""
        async with self._database.read() as db:
            row = await fetch_one(
                db,
                "SELECT sha256 FROM extra_network_hashes "
                "WHERE path = ? AND algorithm = ? AND size_bytes = ? AND mtime_ns = ?",
                (path, algorithm, size_bytes, mtime_ns),
            )
        return str(row["sha256"]) if row is not None else None

    async def put(self, path: str, algorithm: str, size_bytes: int, mtime_ns: int, sha256: str) -> None:
        """Record (or replace) the ``algorithm`` hash of ``path`` at this size and mtime."""
        async with self._database.write() as db:
            await db.execute(
                "INSERT INTO extra_network_hashes (path, algorithm, size_bytes, mtime_ns, sha256, hashed_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (path, algorithm) DO UPDATE SET "
                "size_bytes = excluded.size_bytes, mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256, "
                "hashed_at = excluded.hashed_at",
                (path, algorithm, size_bytes, mtime_ns, sha256, utc_now()),
            )
