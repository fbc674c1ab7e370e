"""EventStream: one consumer's buffered view of the daemon's event notifications."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Final, Self

from cauldron_client.errors import CauldronError

Event = dict[str, Any]

DROPPED = "events.dropped"
# Event types the daemon sends only to subscriptions that name them (live step previews are image bytes).
NAMED_ONLY = frozenset({"job.preview"})
# In the daemon's list of types: every event but the NAMED_ONLY ones.
ALL_TYPES = "*"
DEFAULT_BUFFER = 10_000

_WAKE: Final = object()


class EventStream:
    """Events of the requested ``types`` (all but NAMED_ONLY when None), in arrival order.

    The client's reader task must never wait on a consumer, or a slow ``async for`` body would stall every
    RPC response on the connection. So the buffer is bounded; events that do not fit are counted and reported
    as one ``events.dropped`` event (``"source": "client"``) once the consumer catches up, the same way the
    daemon reports its own drops.

    Iteration ends (StopAsyncIteration) when the client is closed, and raises ConnectionFailed when the
    connection drops. ``next(max_wait)`` returns None when ``max_wait`` seconds pass without an event; it is
    safe to cancel, unlike ``asyncio.wait_for`` around an async generator.
    """

    def __init__(
        self,
        types: Iterable[str] | None,
        subscribe: Callable[[EventStream], Awaitable[None]],
        unsubscribe: Callable[[EventStream], None],
        buffer_size: int = DEFAULT_BUFFER,
    ) -> None:
        self.types: frozenset[str] | None = frozenset(types) if types is not None else None
        self._subscribe = subscribe
        self._unsubscribe = unsubscribe
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=buffer_size)
        self._started = False
        self._finished = False
        self._error: CauldronError | None = None
        self.dropped = 0

    async def start(self) -> None:
        """Register with the client and make sure the daemon sends our types. Idempotent; events that arrive
        after this returns are buffered, so call it before reading any state the events will update."""
        if not self._started:
            self._started = True
            await self._subscribe(self)

    def wants(self, event_type: str) -> bool:
        if self.types is None:
            return event_type not in NAMED_ONLY
        return event_type in self.types or event_type == DROPPED

    def offer(self, event: Event) -> None:
        """Called by the client's reader task. Never blocks."""
        if self._finished or not self.wants(str(event.get("type"))):
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    def finish(self, error: CauldronError | None = None) -> None:
        """End the stream: normally (client closed) or with ``error`` (connection lost)."""
        if self._finished:
            return
        self._finished = True
        self._error = error
        # Wake a consumer blocked on an empty queue; with a full queue the consumer is not waiting.
        if self._queue.empty():
            self._queue.put_nowait(_WAKE)

    async def next(self, max_wait: float | None = None) -> Event | None:
        """The next event, or None when ``max_wait`` seconds pass first. Raises StopAsyncIteration once the
        client is closed and ConnectionFailed once the connection is lost (after the buffered events)."""
        await self.start()
        ready = self._ready()
        if ready is not None:
            return ready
        try:
            async with asyncio.timeout(max_wait):
                item = await self._queue.get()
        except TimeoutError:
            return None
        if item is _WAKE:
            return self._ready() or self._end()
        event: Event = item
        return event

    def _ready(self) -> Event | None:
        """An event available without waiting, or the end of the stream once the buffer is drained."""
        if not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not _WAKE:
                event: Event = item
                return event
        if self.dropped:
            count, self.dropped = self.dropped, 0
            return {"type": DROPPED, "ts": time.time(), "count": count, "source": "client"}
        if self._finished:
            return self._end()
        return None

    def _end(self) -> Event:
        if self._error is not None:
            raise self._error
        raise StopAsyncIteration

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        event = await self.next()
        if event is None:  # cannot happen without a timeout; keeps the type exact
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        self._unsubscribe(self)
        self.finish()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
