"""The one SQLite connection, its lock and the read/write helpers every repository shares.

One aiosqlite connection serves the whole daemon; one asyncio lock is held around every transaction *and* every
read, because reads on the same connection would otherwise see a write transaction's uncommitted rows between two
of its awaits. Every write helper returns only after its COMMIT, so a caller may acknowledge or announce the change
as soon as the await returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from cauldrond.store.migrations import apply_migrations

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """A request the store refuses (a job already done, an unsafe image path...). Nothing was changed."""


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {"value": value}


def id_list(ids: Iterable[int]) -> str:
    # Id lists travel as one JSON parameter read through json_each, so every statement stays a constant.
    return dumps([int(one) for one in ids])


class Database:
    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._connection: aiosqlite.Connection | None = connection
        self.path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open (or create) the database at ``path`` and bring its schema up to date."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the sqlite3 module must not open transactions behind our back; we BEGIN them.
        connection = await aiosqlite.connect(path, isolation_level=None)
        try:
            connection.row_factory = sqlite3.Row
            # Only other processes (a backup, the sqlite3 shell) can hold the lock; wait for them, briefly.
            await connection.execute("PRAGMA busy_timeout = 10000")
            async with connection.execute("PRAGMA journal_mode = WAL") as cursor:
                row = await cursor.fetchone()
            if row is None or str(row[0]).lower() != "wal":
                log.warning("SQLite refused WAL mode for %s (journal mode %s)", path, row[0] if row else None)
            # FULL: each COMMIT is fsynced, so an acknowledged change survives a power cut, not only a crash.
            await connection.execute("PRAGMA synchronous = FULL")
            await connection.execute("PRAGMA foreign_keys = ON")
            await apply_migrations(connection)
        except BaseException:
            await connection.close()
            raise
        return cls(connection, path)

    async def close(self) -> None:
        if self._connection is None:
            return
        async with self._lock:
            connection, self._connection = self._connection, None
            await connection.close()

    @property
    def is_open(self) -> bool:
        return self._connection is not None

    def connection(self) -> aiosqlite.Connection:
        if self._connection is None:
            raise StoreError("the store is closed")
        return self._connection

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            yield self.connection()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction. IMMEDIATE takes the write lock first, so it cannot fail halfway on BUSY."""
        async with self._lock:
            db = self.connection()
            try:
                # BEGIN sits inside the try: if we are cancelled while it is queued it still runs, and must
                # not leave a transaction open for the next caller.
                await db.execute("BEGIN IMMEDIATE")
                yield db
                await db.execute("COMMIT")
            except BaseException:
                # Also on cancellation: the connection's thread runs statements in order, so this ROLLBACK
                # lands after any statement still in flight. It fails harmlessly if no transaction began.
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await db.execute("ROLLBACK")
                raise


async def fetch_all(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
    async with db.execute(sql, params) as cursor:
        return list(await cursor.fetchall())


async def fetch_one(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
    async with db.execute(sql, params) as cursor:
        row: sqlite3.Row | None = await cursor.fetchone()
        # Drain the statement so an UPDATE ... RETURNING has finished before the transaction goes on.
        await cursor.fetchall()
        return row


async def changed_rows(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> int:
    cursor = await db.execute(sql, params)
    count = int(cursor.rowcount)
    await cursor.close()
    return count


async def touch_experiments(db: aiosqlite.Connection, job_ids_json: str, now: str) -> None:
    """Bump ``updated_at`` of the experiments owning these jobs (inside the caller's transaction)."""
    await db.execute(
        "UPDATE experiments SET updated_at = ? WHERE id IN "
        "(SELECT DISTINCT experiment_id FROM jobs WHERE id IN (SELECT value FROM json_each(?)))",
        (now, job_ids_json),
    )
