"""Credentials: the local token (a 0600 file in the data dir) and per-device tokens (stored only as sha256
hashes), how a request presents one (Bearer header or the pairing cookie), and the registry of open RPC
connections by token so a revoke can close them at once."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from aiohttp import WSCloseCode, web

if TYPE_CHECKING:
    from cauldrond.store import Store

TOKEN_BYTES = 32  # 256 bits
COOKIE_NAME = "cauldron_device"
# last_used_at is for the owner's eyes ("used 3 minutes ago"); a write per request would be waste.
TOUCH_INTERVAL_S = 60.0


def ensure_token(path: Path) -> str:
    """Read the token, creating it on first start. O_EXCL makes two racing starts agree on one token."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)  # repair a copy made with looser permissions
        token = path.read_text(encoding="ascii").strip()
        if len(token) < 22:  # fewer than 128 bits of urlsafe base64
            raise RuntimeError(f"the token in {path} is too short; delete the file to make a new one") from None
        return token
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return token


def new_device_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a plain (unsalted, fast) hash is enough: nothing to brute-force.
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def bearer_token(request: web.BaseRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return None
    return value.strip()


def cookie_token(request: web.BaseRequest) -> str | None:
    value = request.cookies.get(COOKIE_NAME)
    return value or None


def token_matches(presented: str | None, expected: str) -> bool:
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8", "replace"), expected.encode("utf-8"))


@dataclass(frozen=True)
class Credential:
    """Who is calling: the local token (the owner's CLI on this machine) or a paired device."""

    kind: Literal["local", "device"]
    token_id: int | None = None  # the tokens row of a device
    name: str = "local"
    via: Literal["bearer", "cookie"] = "bearer"

    @property
    def is_local(self) -> bool:
        return self.kind == "local"


# What an in-process caller (a test driving RpcConnection directly, a plugin) acts as: the owner.
LOCAL_CREDENTIAL = Credential("local")


class Authenticator:
    def __init__(self, local_token: str, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self._local = local_token
        self._store = store
        self._clock = clock
        self._touched: dict[int, float] = {}

    async def check(self, presented: str | None, via: Literal["bearer", "cookie"]) -> Credential | None:
        if presented is None or len(presented) > 256:
            return None
        if token_matches(presented, self._local):
            return Credential("local", via=via)
        row = await self._store.tokens.find_active(hash_token(presented))
        if row is None:
            return None
        now = self._clock()
        if now - self._touched.get(row.id, -TOUCH_INTERVAL_S) >= TOUCH_INTERVAL_S:
            self._touched[row.id] = now
            await self._store.tokens.touch(row.id)
        return Credential("device", token_id=row.id, name=row.name, via=via)

    async def was_revoked(self, presented: str) -> bool:
        """Whether ``presented`` is a device token that existed and was revoked (not merely wrong)."""
        if len(presented) > 256:
            return False
        row = await self._store.tokens.find(hash_token(presented))
        return row is not None and row.revoked_at is not None

    async def authenticate(self, request: web.BaseRequest) -> Credential | None:
        """A Bearer header wins over the cookie: the CLI never sends cookies, browsers never send Bearer."""
        bearer = bearer_token(request)
        if bearer is not None:
            return await self.check(bearer, "bearer")
        return await self.check(cookie_token(request), "cookie")


class ConnectionRegistry:
    """Open RPC WebSockets by credential, so revoking a device token closes its connections at once."""

    def __init__(self) -> None:
        self._open: dict[web.WebSocketResponse, Credential] = {}

    def add(self, ws: web.WebSocketResponse, credential: Credential) -> None:
        self._open[ws] = credential

    def remove(self, ws: web.WebSocketResponse) -> None:
        self._open.pop(ws, None)

    def count(self, token_id: int) -> int:
        return sum(1 for c in self._open.values() if c.token_id == token_id)

    async def close_token(self, token_id: int) -> int:
        doomed = [ws for ws, c in self._open.items() if c.token_id == token_id]
        for ws in doomed:
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"token revoked")
        return len(doomed)
