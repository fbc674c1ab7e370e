"""Access tokens (per-device tokens from LAN pairing). Only sha256 hashes are stored."""

from __future__ import annotations

from cauldrond.store.database import Database, changed_rows, fetch_all, fetch_one
from cauldrond.store.rows import TokenRow
from cauldrond.store.timestamps import utc_now

_COLUMNS = "id, name, token_hash, created_at, last_used_at, revoked_at"


class TokenRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def add(self, name: str, token_hash: str) -> TokenRow:
        now = utc_now()
        async with self._database.write() as db:
            row = await fetch_one(
                db,
                f"INSERT INTO tokens (name, token_hash, created_at) VALUES (?, ?, ?) RETURNING {_COLUMNS}",  # nosec B608
                (name, token_hash, now),
            )
        if row is None:  # pragma: no cover - INSERT ... RETURNING always yields its row
            raise RuntimeError("token insert returned nothing")
        return TokenRow.from_row(row)

    async def find_active(self, token_hash: str) -> TokenRow | None:
        """The unrevoked token with this hash, if any."""
        async with self._database.read() as db:
            row = await fetch_one(
                db,
                f"SELECT {_COLUMNS} FROM tokens WHERE token_hash = ? AND revoked_at IS NULL",  # nosec B608
                (token_hash,),
            )
        return TokenRow.from_row(row) if row is not None else None

    async def find(self, token_hash: str) -> TokenRow | None:
        """The token with this hash, revoked or not (so a signed-out browser can be told so)."""
        async with self._database.read() as db:
            row = await fetch_one(
                db,
                f"SELECT {_COLUMNS} FROM tokens WHERE token_hash = ?",  # nosec B608
                (token_hash,),
            )
        return TokenRow.from_row(row) if row is not None else None

    async def touch(self, token_id: int) -> None:
        """Record a use. Each call is an fsynced commit: callers should throttle it (e.g. once a minute)."""
        async with self._database.write() as db:
            await db.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (utc_now(), int(token_id)))

    async def revoke(self, token_id: int) -> bool:
        async with self._database.write() as db:
            changed = await changed_rows(
                db,
                "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (utc_now(), int(token_id)),
            )
        return bool(changed)

    async def all(self) -> list[TokenRow]:
        async with self._database.read() as db:
            rows = await fetch_all(db, f"SELECT {_COLUMNS} FROM tokens ORDER BY id")  # nosec B608
        return [TokenRow.from_row(row) for row in rows]
