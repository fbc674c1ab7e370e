"""Store queries for access tokens (per-device tokens from LAN pairing). Only sha256 hashes are stored.
A mixin of ``Store``, like plugin_runs.py, so store.py keeps to jobs, experiments and images."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cauldrond.store.rows import TokenRow
from cauldrond.store.timestamps import utc_now

if TYPE_CHECKING:
    import aiosqlite


def _token(row: sqlite3.Row) -> TokenRow:
    return TokenRow(**{key: row[key] for key in row.keys()})  # noqa: SIM118 - sqlite3.Row is not a Mapping


class TokensMixin:
    if TYPE_CHECKING:

        def _read(self) -> contextlib.AbstractAsyncContextManager[aiosqlite.Connection]: ...

        def _write(self) -> contextlib.AbstractAsyncContextManager[aiosqlite.Connection]: ...

        @staticmethod
        async def _all(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]: ...

        @staticmethod
        async def _one(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None: ...

    async def add_token(self, name: str, token_hash: str) -> TokenRow:
        now = utc_now()
        async with self._write() as db:
            row = await self._one(
                db,
                "INSERT INTO tokens (name, token_hash, created_at) VALUES (?, ?, ?) "
                "RETURNING id, name, token_hash, created_at, last_used_at, revoked_at",
                (name, token_hash, now),
            )
        if row is None:  # pragma: no cover - INSERT ... RETURNING always yields its row
            raise RuntimeError("token insert returned nothing")
        return _token(row)

    async def find_active_token(self, token_hash: str) -> TokenRow | None:
        """The unrevoked token with this hash, if any."""
        async with self._read() as db:
            row = await self._one(
                db,
                "SELECT id, name, token_hash, created_at, last_used_at, revoked_at FROM tokens "
                "WHERE token_hash = ? AND revoked_at IS NULL",
                (token_hash,),
            )
        return _token(row) if row is not None else None

    async def touch_token(self, token_id: int) -> None:
        """Record a use. Each call is an fsynced commit: callers should throttle it (e.g. once a minute)."""
        async with self._write() as db:
            await db.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (utc_now(), int(token_id)))

    async def revoke_token(self, token_id: int) -> bool:
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (utc_now(), int(token_id)),
            )
            changed = bool(cursor.rowcount)
            await cursor.close()
        return changed

    async def list_tokens(self) -> list[TokenRow]:
        async with self._read() as db:
            rows = await self._all(
                db,
                "SELECT id, name, token_hash, created_at, last_used_at, revoked_at FROM tokens ORDER BY id",
            )
        return [_token(row) for row in rows]
