"""One WebSocket client: read frames, dispatch requests concurrently (bounded), write replies and events
through one bounded outbox so a slow reader cannot make the daemon buffer without limit."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMsgType, web

from cauldrond.events import Subscription
from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.protocol import (
    RpcError,
    decode_request,
    encode_notification,
    encode_response,
    peek_msgid,
)

if TYPE_CHECKING:
    from cauldrond.services import Services

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 64
OUTBOX_SIZE = 256
SEND_TIMEOUT_S = 10.0


class RpcConnection:
    def __init__(self, services: Services, ws: web.WebSocketResponse, peer: str) -> None:
        self._services = services
        self._ws = ws
        self.peer = peer
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=OUTBOX_SIZE)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._subscription: Subscription | None = None
        self._forwarder: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[bool] | None = None
        self._room = asyncio.Event()

    async def serve(self) -> None:
        writer = asyncio.create_task(self._write_loop(), name=f"rpc-writer {self.peer}")
        try:
            async for message in self._ws:
                if message.type == WSMsgType.BINARY:
                    self._dispatch(message.data)
                elif message.type == WSMsgType.TEXT:
                    self._reply(None, RpcError("invalid_request", "text frames are not accepted; send msgpack"))
                elif message.type == WSMsgType.ERROR:
                    log.info("rpc connection %s closed on error: %s", self.peer, self._ws.exception())
                    break
        finally:
            for task in (*self._in_flight, *(t for t in (self._forwarder,) if t)):
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)
            if self._forwarder is not None:
                await asyncio.gather(self._forwarder, return_exceptions=True)
            if self._subscription is not None:
                self._services.events.unsubscribe(self._subscription)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    def subscribe(self, types: list[str] | None) -> None:
        if self._subscription is not None:
            self._services.events.unsubscribe(self._subscription)
            if self._forwarder is not None:
                self._forwarder.cancel()
        self._subscription = self._services.events.subscribe(types)
        self._forwarder = asyncio.create_task(self._forward_events(self._subscription))

    # -- internals ----------------------------------------------------------------------------------------------

    def _dispatch(self, frame: bytes) -> None:
        try:
            request = decode_request(frame)
        except RpcError as exc:
            self._reply(peek_msgid(frame), exc)
            return
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            self._reply(
                request.msgid,
                RpcError("rate_limited", f"more than {MAX_IN_FLIGHT} requests in flight; wait for replies"),
            )
            return
        task = asyncio.create_task(self._handle(request.msgid, request.method, request.params))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _handle(self, msgid: int, method: str, params: dict[str, Any]) -> None:
        ctx = RpcContext(self._services, self)
        try:
            result = await self._services.methods.call(ctx, method, params)
        except RpcError as exc:
            self._reply(msgid, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("rpc method %s failed", method)
            self._reply(msgid, RpcError("internal_error", f"{method} failed; the daemon log has the details"))
        else:
            self._reply(msgid, None, result)

    def _reply(self, msgid: int | None, error: RpcError | None, result: Any = None) -> None:
        try:
            frame = encode_response(msgid, error, result)
        except Exception:
            log.exception("cannot encode the reply to msgid %s", msgid)
            frame = encode_response(msgid, RpcError("internal_error", "the result could not be encoded"), None)
        self._enqueue(frame)

    def _enqueue(self, frame: bytes) -> None:
        try:
            self._outbox.put_nowait(frame)
        except asyncio.QueueFull:
            # The client reads slower than it asks: drop it rather than buffer without bound.
            log.warning("rpc client %s is not reading its replies; closing", self.peer)
            if self._closing is None:
                self._closing = asyncio.create_task(
                    self._ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"not reading")
                )

    async def _write_loop(self) -> None:
        while True:
            frame = await self._outbox.get()
            if self._outbox.qsize() < OUTBOX_SIZE // 2:
                self._room.set()
            try:
                await asyncio.wait_for(self._ws.send_bytes(frame), SEND_TIMEOUT_S)
            except (ConnectionError, TimeoutError, RuntimeError):
                await self._ws.close(code=WSCloseCode.GOING_AWAY)
                return

    async def _forward_events(self, subscription: Subscription) -> None:
        while True:
            event = await subscription.get()
            # Events share the outbox with replies but may only fill half of it, so a burst of events can never
            # crowd out a reply; meanwhile the subscription's own buffer absorbs them and reports any it drops.
            while self._outbox.qsize() >= OUTBOX_SIZE // 2:
                self._room.clear()
                await self._room.wait()
            self._enqueue(encode_notification("event", [event]))
