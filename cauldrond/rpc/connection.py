"""One WebSocket client: read frames, dispatch requests concurrently (bounded), write replies and events
through one outbox bounded in bytes, so a client that asks and never reads cannot make the daemon buffer
without limit, and one that floods cannot crowd out the others (``RpcLimits``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMsgType, web

from cauldrond.events import Subscription
from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.limits import RpcLimits
from cauldrond.rpc.protocol import (
    MAX_REPLY_BYTES,
    RpcError,
    decode_request,
    encode_notification,
    encode_response,
    peek_msgid,
)
from cauldrond.rpc.redaction import PathRedactor
from cauldrond.web.auth import LOCAL_CREDENTIAL
from cauldrond.work_pool import PoolBusy, PoolClosed

if TYPE_CHECKING:
    from cauldrond.services import Services
    from cauldrond.web.auth import Credential

log = logging.getLogger(__name__)

# Frames waiting to be sent, whatever their size (many tiny replies cost bookkeeping too).
OUTBOX_FRAMES = 1024
CLOSE_TIMEOUT_S = 2.0
# A close reason travels in the close frame, which allows 123 bytes.
MAX_CLOSE_REASON = 120


class RpcConnection:
    def __init__(
        self,
        services: Services,
        ws: web.WebSocketResponse,
        peer: str,
        *,
        limits: RpcLimits | None = None,
        credential: Credential | None = None,
    ) -> None:
        self._services = services
        self._ws = ws
        self.peer = peer
        self.credential = credential if credential is not None else LOCAL_CREDENTIAL
        self._limits = limits if limits is not None else RpcLimits()
        self._outbox: deque[bytes] = deque()
        self._outbox_bytes = 0
        self._has_frames = asyncio.Event()
        self._under_budget = asyncio.Event()
        self._under_budget.set()
        self._room_for_events = asyncio.Event()
        self._room_for_events.set()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._subscription: Subscription | None = None
        self._forwarder: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        # What a test or an operator can read about this connection.
        self.requests_read = 0
        self.peak_outbox_bytes = 0
        self.close_reason: str | None = None

    @property
    def is_local(self) -> bool:
        """The owner's own token (or an in-process caller); paired devices are not local."""
        return self.credential.is_local

    @property
    def outbox_bytes(self) -> int:
        return self._outbox_bytes

    async def serve(self) -> None:
        writer = asyncio.create_task(self._write_loop(), name=f"rpc-writer {self.peer}")
        try:
            async for message in self._ws:
                if message.type == WSMsgType.BINARY:
                    # Backpressure: while this client leaves too many reply bytes unread, read none of its requests.
                    if not await self._wait_for_room():
                        break
                    await self._dispatch(message.data)
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
            if self._closing is not None:
                await asyncio.gather(self._closing, return_exceptions=True)
            self._drop_outbox()

    def _redactor(self) -> PathRedactor:
        settings = self._services.settings
        return PathRedactor({str(settings.data_dir): "<data_dir>", str(settings.resolved_models_dir): "<models_dir>"})

    def subscribe(self, types: list[str] | None) -> None:
        if self._subscription is not None:
            self._services.events.unsubscribe(self._subscription)
            if self._forwarder is not None:
                self._forwarder.cancel()
        self._subscription = self._services.events.subscribe(types)
        self._forwarder = asyncio.create_task(self._forward_events(self._subscription))

    # -- reading and dispatching ---------------------------------------------------------------------------------

    async def _wait_for_room(self) -> bool:
        if self._closing is not None:
            return False
        if self._outbox_bytes <= self._limits.outbox_budget_bytes:
            return True
        try:
            await asyncio.wait_for(self._under_budget.wait(), self._limits.stall_close_s)
        except TimeoutError:
            self._abandon(
                f"not reading replies: {self._outbox_bytes} bytes unsent for {self._limits.stall_close_s:g} s"
            )
        return self._closing is None

    async def _dispatch(self, frame: bytes) -> None:
        self.requests_read += 1
        try:
            request = decode_request(frame)
        except RpcError as exc:
            self._reply(peek_msgid(frame), exc)
            return
        limit = self._limits.max_in_flight_per_connection
        if len(self._in_flight) >= limit:
            self._reply(
                request.msgid, RpcError("rate_limited", f"more than {limit} requests in flight; wait for replies")
            )
            return
        # The shared budget: this connection waits here, holding one request, until every connection that
        # asked earlier got a slot. Nothing more is read from it meanwhile.
        await self._limits.acquire()
        task = asyncio.create_task(self._handle(request.msgid, request.method, request.params))
        self._in_flight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._limits.release()

    async def _handle(self, msgid: int, method: str, params: dict[str, Any]) -> None:
        ctx = RpcContext(self._services, self, self.credential)
        try:
            result = await self._services.methods.call(ctx, method, params)
            if not self.is_local:
                result = self._redactor()(result)
        except RpcError as exc:
            self._reply(msgid, exc if self.is_local else RpcError(exc.code, *self._redactor()([exc.message, exc.data])))
        except asyncio.CancelledError:
            raise
        except PoolBusy as exc:
            self._reply(msgid, RpcError("busy", str(exc)))
        except PoolClosed as exc:
            self._reply(msgid, RpcError("unavailable", str(exc)))
        except OverflowError:
            # SQLite cannot bind an integer over 2^63 - 1; the schemas bound ids, this catches any number they miss.
            self._reply(msgid, RpcError("invalid_params", f"{method}: a number in the params is too large"))
        except Exception:
            log.exception("rpc method %s failed", method)
            self._reply(msgid, RpcError("internal_error", f"{method} failed; the daemon log has the details"))
        else:
            self._reply(msgid, None, result, method)

    def _reply(self, msgid: int | None, error: RpcError | None, result: Any = None, method: str = "") -> None:
        if self._closing is not None:
            return  # nobody will read it
        try:
            frame = encode_response(msgid, error, result)
        except Exception:
            log.exception("cannot encode the reply to msgid %s", msgid)
            frame = encode_response(msgid, RpcError("internal_error", "the result could not be encoded"), None)
        if len(frame) > MAX_REPLY_BYTES:
            log.warning("reply to %s is %d bytes; refused", method, len(frame))
            frame = encode_response(
                msgid,
                RpcError(
                    "too_large",
                    f"the reply to {method} would be {len(frame)} bytes, over the {MAX_REPLY_BYTES} a reply may "
                    "have; ask for less at a time (a smaller limit, or the next page)",
                    {"bytes": len(frame), "max_bytes": MAX_REPLY_BYTES},
                ),
                None,
            )
        self._enqueue(frame)

    # -- the outbox -----------------------------------------------------------------------------------------------

    def _enqueue(self, frame: bytes) -> None:
        if self._closing is not None:
            return
        self._outbox.append(frame)
        self._outbox_bytes += len(frame)
        self.peak_outbox_bytes = max(self.peak_outbox_bytes, self._outbox_bytes)
        self._has_frames.set()
        self._update_room()
        if self._outbox_bytes > self._limits.outbox_close_bytes or len(self._outbox) > OUTBOX_FRAMES:
            # Requests already in flight kept answering after reading stopped: drop the client, not the daemon.
            self._abandon(f"not reading replies: {self._outbox_bytes} bytes in {len(self._outbox)} replies unsent")

    def _update_room(self) -> None:
        budget = self._limits.outbox_budget_bytes
        if self._outbox_bytes <= budget:
            self._under_budget.set()
        else:
            self._under_budget.clear()
        # Events may fill only half of the outbox, so a burst of events can never crowd out a reply; meanwhile
        # the subscription's own buffer absorbs them and reports any it drops.
        if self._outbox_bytes < budget // 2 and len(self._outbox) < OUTBOX_FRAMES // 2:
            self._room_for_events.set()
        else:
            self._room_for_events.clear()

    def _abandon(self, reason: str) -> None:
        """Close with 1008 and a reason the client can show, and free what it left unread at once."""
        if self._closing is not None:
            return
        self.close_reason = reason
        log.warning("rpc client %s: %s; closing", self.peer, reason)
        self._drop_outbox()
        self._under_budget.set()  # the reader wakes, sees the close and stops
        self._closing = asyncio.create_task(self._close(reason))

    def _drop_outbox(self) -> None:
        self._outbox.clear()
        self._outbox_bytes = 0

    async def _close(self, reason: str) -> None:
        message = reason.encode("utf-8")[:MAX_CLOSE_REASON]
        # A client that reads nothing does not read the close frame either: give up on it after a moment
        # (aiohttp then closes the transport).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(code=WSCloseCode.POLICY_VIOLATION, message=message), CLOSE_TIMEOUT_S)

    async def _write_loop(self) -> None:
        while True:
            while not self._outbox:
                self._has_frames.clear()
                await self._has_frames.wait()
            frame = self._outbox.popleft()
            try:
                await asyncio.wait_for(self._ws.send_bytes(frame), self._limits.stall_close_s)
            except TimeoutError:
                self._abandon(f"not reading replies: a reply waited {self._limits.stall_close_s:g} s to be sent")
                return
            except (ConnectionError, RuntimeError):
                return  # the peer went away; serve() ends with the socket
            finally:
                if self._closing is None:
                    self._outbox_bytes -= len(frame)
                    self._update_room()

    async def _forward_events(self, subscription: Subscription) -> None:
        while True:
            event = await subscription.get()
            await self._room_for_events.wait()
            self._enqueue(encode_notification("event", [event if self.is_local else self._redactor()(event)]))
