"""The asyncio client: msgpack-RPC over one WebSocket, plus image bytes over HTTP (docs/rpc.md)."""

from __future__ import annotations

import asyncio
import http.client
import inspect
import ipaddress
import itertools
import logging
import re
import socket
import ssl as ssl_module
import weakref
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from cauldron_client.connection import resolve_endpoint
from cauldron_client.errors import CauldronError, ConnectionFailed, RpcError, Unauthorized
from cauldron_client.events import ALL_TYPES, DEFAULT_BUFFER, NAMED_ONLY, EventStream

log = logging.getLogger(__name__)

MiB = 1 << 20
REQUEST, RESPONSE, NOTIFICATION = 0, 1, 2
# docs/rpc.md: the daemon closes the connection (1009) on a bigger frame; refusing it here keeps it open.
MAX_REQUEST_BYTES = 1 * MiB
# Responses may be larger than requests (a long experiments.get jobs list).
MAX_RESPONSE_BYTES = 16 * MiB
_MSGID_MODULUS = 1 << 32
# The daemon's HTTP routes for files (docs/rpc.md); nothing else is ever fetched with the token.
_FETCHABLE = re.compile(r"/images/[0-9]+\.png|/grids/[0-9A-Za-z_-]+\.png", re.ASCII)
_IMAGE_PATH = re.compile(r"/images/([0-9]+)\.png", re.ASCII)

# websockets >= 15 routes through $HTTP(S)_PROXY by default; 13/14 have no ``proxy`` argument at all.
_CONNECT_TAKES_PROXY = "proxy" in inspect.signature(connect.__init__).parameters


class Client:
    """A connection to cauldrond.

    ``async with Client(url, token) as c: await c.call("system.info")``. ``url`` and ``token`` default to
    discovery (see ``cauldron_client.connection``). One background task reads every frame and routes responses
    to their callers by msgid and events to the streams made by ``events()``, so calls may run concurrently.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        open_timeout: float = 10.0,
        http_timeout: float = 60.0,
        max_size: int = MAX_RESPONSE_BYTES,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        ssl: ssl_module.SSLContext | None = None,
    ) -> None:
        endpoint = resolve_endpoint(url, token)
        self.url = endpoint.url
        self.http_url = endpoint.http_url
        self._token = endpoint.token
        self._open_timeout = open_timeout
        self._http_timeout = http_timeout
        self._max_size = max_size
        self._max_request_bytes = max_request_bytes
        self._ssl = ssl
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        self._lost: ConnectionFailed | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._streams: weakref.WeakSet[EventStream] = weakref.WeakSet()
        self._subscribed: frozenset[str] | None = frozenset()  # None: every type
        self._has_subscribed = False
        self._subscribe_lock = asyncio.Lock()

    # -- connection lifecycle --------------------------------------------------------------------------------

    async def connect(self) -> None:
        if self.connected:
            return
        if self._ws is not None:  # lost earlier: start over on a fresh connection
            await self.close()
        kwargs: dict[str, Any] = {}
        if _CONNECT_TAKES_PROXY and _is_loopback(urlsplit(self.url).hostname):
            kwargs["proxy"] = None  # a proxy can never reach this machine's loopback
        if self._ssl is not None:
            kwargs["ssl"] = self._ssl
        try:
            self._ws = await connect(
                self.url,
                additional_headers={"Authorization": f"Bearer {self._token}"},
                open_timeout=self._open_timeout,
                max_size=self._max_size,
                **kwargs,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise Unauthorized(f"cauldrond at {self.url} refused the token (HTTP {status})") from None
            raise ConnectionFailed(f"cannot reach cauldrond at {self.url}: HTTP {status}") from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            reason = describe_os_error(exc)
            raise ConnectionFailed(f"cannot reach cauldrond at {self.url}: {reason}") from None
        self._closing = False
        self._lost = None
        self._has_subscribed = False  # the daemon keeps subscriptions per connection
        self._reader = asyncio.create_task(self._read_loop(self._ws), name="cauldron-client-reader")

    async def close(self) -> None:
        ws, reader = self._ws, self._reader
        if ws is None:
            return
        self._closing = True
        await ws.close()
        if reader is not None:
            try:
                async with asyncio.timeout(5):
                    await reader
            except TimeoutError:
                reader.cancel()
        self._ws = None
        self._reader = None

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._lost is None and not self._closing

    # -- requests --------------------------------------------------------------------------------------------

    async def call(self, method: str, /, **params: Any) -> Any:
        """Call ``method`` with named ``params``; returns the result or raises RpcError / ConnectionFailed."""
        ws = self._open_connection()
        msgid = next(self._ids) % _MSGID_MODULUS
        frame = msgpack.packb([REQUEST, msgid, method, [params] if params else []], use_bin_type=True)
        if len(frame) > self._max_request_bytes:
            raise RpcError(
                "too_large",
                f"the {method} request is {len(frame)} bytes, over the {self._max_request_bytes} byte frame limit",
            )
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msgid] = future
        try:
            await ws.send(frame)
            return await future
        except ConnectionClosed as exc:
            raise self._lost or self._closed_error(exc) from None
        finally:
            self._pending.pop(msgid, None)

    def _open_connection(self) -> ClientConnection:
        if self._lost is not None:
            raise self._lost
        if self._ws is None or self._closing:
            raise ConnectionFailed("the client is not connected (use `async with Client(...)` or connect())")
        return self._ws

    # -- events ----------------------------------------------------------------------------------------------

    def events(self, types: Iterable[str] | None = None, *, buffer_size: int = DEFAULT_BUFFER) -> EventStream:
        """A stream of daemon events (all types when ``types`` is None). Subscribes on first use; use
        ``async with c.events() as stream`` to subscribe before reading state the events will change."""
        return EventStream(types, self._add_stream, self._streams.discard, buffer_size)

    async def _add_stream(self, stream: EventStream) -> None:
        self._open_connection()
        self._streams.add(stream)
        # The daemon keeps one subscription per connection, so ask for the union of what all streams want.
        async with self._subscribe_lock:
            wanted = _union(s.types for s in self._streams)
            if self._has_subscribed and wanted == self._subscribed:
                return
            if wanted is None:
                result = await self.call("events.subscribe")
            else:
                result = await self.call("events.subscribe", types=sorted(wanted))
            log.debug("subscribed to %s", result)
            self._subscribed = wanted
            self._has_subscribed = True

    # -- images ----------------------------------------------------------------------------------------------

    async def fetch_image(self, image_id: int) -> bytes:
        """The PNG bytes of image ``image_id`` (GET /images/<id>.png). Needs no open WebSocket."""
        if isinstance(image_id, bool) or not isinstance(image_id, int) or image_id < 0:
            raise ValueError(f"image ids are non-negative integers, got {image_id!r}")
        return await self.fetch_path(f"/images/{image_id}.png")

    async def fetch_path(self, url_path: str) -> bytes:
        """The bytes the daemon serves at ``url_path``: a ``url`` from its results, such as an image's
        ``/images/<id>.png`` or a grid's ``/grids/<name>.png``. Needs no open WebSocket.

        Only those two routes are fetched: the path comes from a daemon reply, and sending the token to
        anything else it names (another host, another route) is refused.
        """
        if not isinstance(url_path, str) or _FETCHABLE.fullmatch(url_path) is None:
            raise ValueError(f"refusing to fetch {url_path!r}: only /images/<id>.png and /grids/<name>.png")
        return await asyncio.to_thread(self._fetch_blocking, url_path)

    def _fetch_blocking(self, path: str) -> bytes:
        parts = urlsplit(self.http_url)
        host = parts.hostname or ""
        timeout = self._http_timeout
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(host, parts.port, timeout=timeout, context=self._ssl)
        elif parts.scheme == "http":
            conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
        else:  # http_base_url only makes http(s); refuse anything else outright
            raise ConnectionFailed(f"refusing to fetch images over {parts.scheme!r}")
        try:
            headers = {"Authorization": f"Bearer {self._token}", "Accept": "image/png"}
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            reason = describe_os_error(exc)
            raise ConnectionFailed(f"cannot reach cauldrond at {self.http_url}: {reason}") from None
        finally:
            conn.close()
        if response.status == 200:
            return body
        if response.status == 404:
            image = _IMAGE_PATH.fullmatch(path)
            if image is not None:
                image_id = int(image.group(1))
                raise RpcError("not_found", f"image {image_id} not found", {"image_id": image_id})
            raise RpcError("not_found", f"{path} not found on the daemon", {"path": path})
        if response.status in (401, 403):
            raise Unauthorized(f"cauldrond at {self.http_url} refused the token (HTTP {response.status})")
        status = response.status
        raise RpcError("http_error", f"GET {path} answered HTTP {status}", {"status": status})

    # -- the reader task -------------------------------------------------------------------------------------

    async def _read_loop(self, ws: ClientConnection) -> None:
        error: ConnectionFailed | None = None
        try:
            while True:
                frame = await ws.recv()
                if isinstance(frame, str):
                    log.warning("ignoring a text frame from the daemon")
                    continue
                self._dispatch(frame)
        except ConnectionClosed as exc:
            error = self._closed_error(exc)
        except Exception as exc:  # a bug here must not leave callers waiting forever
            log.exception("the reader task failed")
            error = ConnectionFailed(f"connection to cauldrond at {self.url} failed: {exc!r}")
        finally:
            if error is None:  # cancelled
                error = ConnectionFailed(f"connection to cauldrond at {self.url} was closed")
            self._lost = error
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(error)
            for stream in list(self._streams):
                stream.finish(None if self._closing else error)

    def _dispatch(self, frame: bytes) -> None:
        try:
            message = msgpack.unpackb(frame, raw=False, strict_map_key=False)
        except Exception:  # msgpack raises several unrelated types for corrupt input
            log.warning("ignoring an undecodable frame (%d bytes)", len(frame))
            return
        if not isinstance(message, list) or not message:
            log.warning("ignoring a frame that is not a msgpack-RPC message")
            return
        if message[0] == RESPONSE and len(message) == 4:
            _, msgid, error, result = message
            future = self._pending.get(msgid) if isinstance(msgid, int) else None
            if future is None or future.done():
                return  # the caller gave up (cancelled); nothing is waiting for this answer
            if error is not None:
                future.set_exception(rpc_error_from(error))
            else:
                future.set_result(result)
        elif message[0] == NOTIFICATION and len(message) == 3 and message[1] == "event":
            for event in message[2] if isinstance(message[2], list) else ():
                if isinstance(event, dict):
                    for stream in list(self._streams):
                        stream.offer(event)

    def _closed_error(self, exc: ConnectionClosed) -> ConnectionFailed:
        if self._closing:
            return ConnectionFailed(f"the connection to cauldrond at {self.url} was closed by the client")
        close = exc.rcvd
        if close is None:
            detail = "no close frame"
        else:
            detail = f"code {close.code}" + (f": {close.reason}" if close.reason else "")
        return ConnectionFailed(f"cauldrond at {self.url} closed the connection ({detail})")


def rpc_error_from(error: Any) -> RpcError:
    if isinstance(error, Mapping):
        code = str(error.get("code", "internal_error"))
        return RpcError(code, str(error.get("message", "")), error.get("data"))
    return RpcError("internal_error", f"malformed error from the daemon: {error!r}")


def describe_os_error(exc: BaseException) -> str:
    """A short human reason for a failed connection ("connection refused", not an errno dump)."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is cauldrond running, and on this port?)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl_module.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc)
    # asyncio joins per-address failures ("Multiple exceptions: [Errno 111] ...") when a name resolves twice.
    if "Connect call failed" in text or "Errno 111" in text:
        return "connection refused (is cauldrond running, and on this port?)"
    return text or type(exc).__name__


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _union(types: Iterable[frozenset[str] | None]) -> frozenset[str] | None:
    """What one subscription must ask for to serve every stream: None (all) is "*" once a named-only type
    (``job.preview``) is wanted too, since the daemon's "all" leaves those out."""
    combined: set[str] = set()
    everything = False
    for item in types:
        if item is None:
            everything = True
        else:
            combined |= item
    if not everything:
        return frozenset(combined)
    named = combined & NAMED_ONLY
    return frozenset({ALL_TYPES, *named}) if named else None


def call_sync(method: str, /, *, url: str | None = None, token: str | None = None, **params: Any) -> Any:
    """One call on a fresh connection, for scripts that do not run an event loop."""

    async def run() -> Any:
        async with Client(url, token) as client:
            return await client.call(method, **params)

    return asyncio.run(run())


__all__ = ["CauldronError", "Client", "ConnectionFailed", "RpcError", "Unauthorized", "call_sync"]
