"""Model file hashes, remembered per file version (path, size, mtime), so each file is hashed once."""

from __future__ import annotations

from cauldrond.store.database import Database, fetch_one
from cauldrond.store.timestamps import utc_now


class ModelHashRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, path: str, size_bytes: int, mtime_ns: int) -> str | None:
        """The sha256 recorded for ``path`` when it had this size and mtime; None when unknown or changed."""
        async with self._database.read() as db:
            row = await fetch_one(
                db,
                "SELECT sha256 FROM model_hashes WHERE path = ? AND size_bytes = ? AND mtime_ns = ?",
                (path, size_bytes, mtime_ns),
            )
        return str(row["sha256"]) if row is not None else None

    async def put(self, path: str, size_bytes: int, mtime_ns: int, sha256: str) -> None:
        """Record (or replace) the hash of ``path`` at this size and mtime."""
        async with self._database.write() as db:
            await db.execute(
                "INSERT INTO model_hashes (path, size_bytes, mtime_ns, sha256, hashed_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET size_bytes = excluded.size_bytes, mtime_ns = excluded.mtime_ns, "
                "sha256 = excluded.sha256, hashed_at = excluded.hashed_at",
                (path, size_bytes, mtime_ns, sha256, utc_now()),
            )
