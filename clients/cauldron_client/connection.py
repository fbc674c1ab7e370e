"""Where the daemon is and how to authenticate: URL and token discovery.

Precedence for each: explicit argument > environment > default. The token default is the file the daemon
writes in its data directory, so a CLI on the daemon's machine works with no configuration at all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import platformdirs

from cauldron_client.errors import ConfigError

DEFAULT_URL = "ws://127.0.0.1:7860/rpc"
RPC_PATH = "/rpc"
URL_ENV = "CAULDRON_URL"
# Names of where the token lives, not secrets (bandit B105 flags any "token" string).
TOKEN_ENV = "CAULDRON_TOKEN"  # nosec B105
DATA_DIR_ENV = "CAULDRON_DATA_DIR"
TOKEN_FILE = "token"  # nosec B105

_WS_FOR_HTTP = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_HTTP_FOR_WS = {"ws": "http", "wss": "https"}


def normalize_url(url: str) -> str:
    """The WebSocket RPC URL for what a user typed.

    ``http(s)://host:port`` (what a browser shows) becomes ``ws(s)://host:port/rpc``; a bare ``host:port`` is
    taken as ``ws://``; a URL without a path gets ``/rpc``. Any other scheme is refused.
    """
    text = url.strip()
    if not text:
        raise ConfigError("the daemon URL is empty")
    if "://" not in text:
        text = "ws://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _WS_FOR_HTTP:
        raise ConfigError(f"unsupported URL scheme {parts.scheme!r} in {url!r} (use ws, wss, http or https)")
    if not parts.hostname:
        raise ConfigError(f"no host in daemon URL {url!r}")
    try:
        parts.port  # noqa: B018 - urllib validates the port lazily; force it so a typo fails here
    except ValueError as exc:
        raise ConfigError(f"bad port in daemon URL {url!r}: {exc}") from exc
    path = parts.path
    # A browser URL points at the PWA (``/`` or a page), never at the RPC endpoint.
    if scheme in ("http", "https") or path in ("", "/"):
        path = RPC_PATH
    return urlunsplit((_WS_FOR_HTTP[scheme], parts.netloc, path, parts.query, ""))


def http_base_url(ws_url: str) -> str:
    """``ws://host:port/rpc`` -> ``http://host:port``: the origin that serves ``/images/<id>.png``."""
    parts = urlsplit(ws_url)
    scheme = _HTTP_FOR_WS.get(parts.scheme.lower())
    if scheme is None:
        raise ConfigError(f"not a WebSocket URL: {ws_url!r}")
    return urlunsplit((scheme, parts.netloc, "", "", ""))


def resolve_url(url: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    if url:
        return normalize_url(url)
    if environ.get(URL_ENV):
        return normalize_url(environ[URL_ENV])
    return DEFAULT_URL


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The daemon's data directory, by the daemon's own rule: its env var, then platformdirs."""
    environ = os.environ if environ is None else environ
    if environ.get(DATA_DIR_ENV):
        return Path(environ[DATA_DIR_ENV]).expanduser()
    return Path(platformdirs.user_data_dir("shadow-cauldron", appauthor=False))


def token_path(environ: Mapping[str, str] | None = None) -> Path:
    return data_dir(environ) / TOKEN_FILE


def resolve_token(token: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    if token:
        return token.strip()
    if environ.get(TOKEN_ENV):
        return environ[TOKEN_ENV].strip()
    path = token_path(environ)
    hint = f"pass --token or set {TOKEN_ENV}, or set {DATA_DIR_ENV} to the daemon's data directory"
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"no token file at {path} (has cauldrond run on this machine? {hint})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read token file {path}: {exc.strerror or exc} ({hint})") from None
    if not text:
        raise ConfigError(f"token file {path} is empty ({hint})")
    return text


@dataclass(frozen=True)
class Endpoint:
    """A resolved daemon address and credential."""

    url: str
    token: str

    @property
    def http_url(self) -> str:
        return http_base_url(self.url)


def resolve_endpoint(
    url: str | None = None, token: str | None = None, environ: Mapping[str, str] | None = None
) -> Endpoint:
    return Endpoint(url=resolve_url(url, environ), token=resolve_token(token, environ))
