"""Fan-out of daemon events to subscribers, each with its own bounded buffer so one slow reader never stalls
the engine or the other readers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

Event = dict[str, Any]
RETAINED_EVENTS = 100
# Sent only to subscriptions that name them: a preview frame is bytes, made only while someone asked for it
# (engine/previews.py), so "all events" must not ask for it by accident.
NAMED_ONLY = frozenset({"job.preview"})
# In a list of types: every event but the NAMED_ONLY ones, so ["*", "job.preview"] is everything.
ALL_TYPES = "*"

log = logging.getLogger(__name__)


class Subscription:
    """One reader's view of the event stream. Events that do not fit in its buffer are counted as dropped and
    reported to the reader as one ``events.dropped`` event when it catches up. ``types`` None (or containing
    ALL_TYPES) takes every event except NAMED_ONLY ones, which come only when named."""

    def __init__(self, types: Iterable[str] | None, maxsize: int) -> None:
        self.types = frozenset(types) if types else None
        self._everything = self.types is None or ALL_TYPES in self.types
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def names(self, event_type: str) -> bool:
        return self.types is not None and event_type in self.types

    def offer(self, event: Event) -> None:
        event_type = event["type"]
        if not (self.names(event_type) or (self._everything and event_type not in NAMED_ONLY)):
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def get(self) -> Event:
        if self.dropped and self._queue.empty():
            count, self.dropped = self.dropped, 0
            return {"type": "events.dropped", "ts": time.time(), "count": count}
        return await self._queue.get()


class EventBus:
    def __init__(self, buffer_size: int = 1000) -> None:
        self._subscribers: set[Subscription] = set()
        self._buffer_size = buffer_size
        self._taps: list[Callable[[Event], None]] = []
        # How many subscriptions name each NAMED_ONLY type; read from the worker thread (one dict lookup).
        self._named: dict[str, int] = dict.fromkeys(NAMED_ONLY, 0)
        # What start-up recovery found (the crash guard's verdicts): published before anyone could subscribe, so
        # each new subscriber gets these first.
        self._retained: deque[Event] = deque(maxlen=RETAINED_EVENTS)

    def tap(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` with every event as it is published (metrics, job log lines): unlike a subscriber it
        never misses one, so it must be quick; what it raises is logged, never passed to the publisher."""
        self._taps.append(listener)

    def subscribe(self, types: Iterable[str] | None = None) -> Subscription:
        subscription = Subscription(types, self._buffer_size)
        for event in self._retained:
            subscription.offer(event)
        self._subscribers.add(subscription)
        self._count_named(subscription, +1)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.discard(subscription)
            self._count_named(subscription, -1)

    def subscribed_by_name(self, event_type: str) -> int:
        """How many subscriptions name ``event_type`` (a NAMED_ONLY type; 0 for others). Safe from any thread."""
        return self._named.get(event_type, 0)

    def _count_named(self, subscription: Subscription, change: int) -> None:
        for event_type in NAMED_ONLY:
            if subscription.names(event_type):
                self._named[event_type] += change

    def publish(self, event_type: str, **fields: Any) -> None:
        """Announce something that has already been committed to the store. Never blocks."""
        self._publish({"type": event_type, "ts": time.time(), **fields})

    def publish_retained(self, event_type: str, **fields: Any) -> None:
        """``publish``, and also hand the event to every later subscriber (the last RETAINED_EVENTS of them)."""
        event: Event = {"type": event_type, "ts": time.time(), "retained": True, **fields}
        self._retained.append(event)
        self._publish(event)

    def _publish(self, event: Event) -> None:
        event_type = event["type"]
        for listener in self._taps:
            try:
                listener(event)
            except Exception:  # an observer's bug must never reach the engine that published
                log.exception("event listener %r failed on %s", listener, event_type)
        for subscription in tuple(self._subscribers):
            subscription.offer(event)
