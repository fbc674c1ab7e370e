"""Exceptions raised by the client. All derive from CauldronError so a caller can catch one type."""

from __future__ import annotations

from typing import Any


class CauldronError(Exception):
    """Base class for everything the client raises on purpose."""


class RpcError(CauldronError):
    """The daemon answered a request with an error (codes are listed in docs/rpc.md)."""

    def __init__(self, code: str, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data


class ConnectionFailed(CauldronError):
    """The daemon could not be reached, refused the handshake, or the connection dropped."""


class Unauthorized(ConnectionFailed):
    """The daemon refused the token (HTTP 401 on the WebSocket upgrade or an image request)."""


class ConfigError(CauldronError):
    """The URL or token could not be determined (bad URL, missing token file...)."""
