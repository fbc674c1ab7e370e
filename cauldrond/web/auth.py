"""The local token: created once with mode 0600 in the data dir, compared in constant time."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from aiohttp import web

TOKEN_BYTES = 32  # 256 bits


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


def bearer_token(request: web.BaseRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return None
    return value.strip()


def token_matches(presented: str | None, expected: str) -> bool:
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8", "replace"), expected.encode("utf-8"))
