"""What all RPC connections together may cost: how many are open, how much work runs at once across them, and
how many reply bytes one connection may leave unread. One ``RpcLimits`` per web application.

Fairness comes from the order of waiting, not from a quota: a connection reads its next request only once it
holds a slot of the shared in-flight budget, and it waits for that slot with at most one request in hand. The
slot's waiters are served first come, first served, so a new client waits behind at most one request of each
other connection, however many that connection has sent (issue 9, abuse item 7).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

MiB = 1024 * 1024


@dataclass
class RpcLimits:
    max_connections: int = 100
    max_in_flight_total: int = 128
    max_in_flight_per_connection: int = 64
    # Unsent reply bytes of one connection above which it stops reading requests...
    outbox_budget_bytes: int = 16 * MiB
    # ...and above which (or after stall_close_s without the writer making progress) it is closed.
    outbox_close_bytes: int = 64 * MiB
    stall_close_s: float = 10.0
    open_connections: int = 0
    peak_in_flight: int = 0
    # The open RpcConnection objects, for figures (/metrics, tests): their outbox sizes and close reasons.
    connections: set[Any] = field(default_factory=set, repr=False)
    _work: asyncio.Semaphore | None = field(default=None, repr=False)
    _in_flight: int = 0

    def try_open(self) -> bool:
        """Count a new connection in, or say no when ``max_connections`` are open."""
        if self.open_connections >= self.max_connections:
            return False
        self.open_connections += 1
        return True

    def attach(self, connection: Any) -> None:
        self.connections.add(connection)

    def closed(self, connection: Any = None) -> None:
        self.open_connections = max(0, self.open_connections - 1)
        self.connections.discard(connection)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def acquire(self) -> None:
        """Wait for one slot of the shared in-flight budget (first come, first served)."""
        if self._work is None:
            self._work = asyncio.Semaphore(self.max_in_flight_total)
        await self._work.acquire()
        self._in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self._in_flight)

    def release(self) -> None:
        assert self._work is not None
        self._in_flight -= 1
        self._work.release()
