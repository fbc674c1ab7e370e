"""The engine loop must never die unseen: a death is logged, recorded for /healthz and system.info, and the loop
is started again after its state is rebuilt from SQLite, up to a limit, after which it stays dead and /healthz
answers 503 so that a service manager restarts the daemon.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

# Deaths tolerated within the window before the loop is left dead.
MAX_RESTARTS = 3
RESTART_WINDOW_S = 600.0


class Supervisor:
    def __init__(
        self,
        loop: Callable[[], Awaitable[None]],
        rebuild: Callable[[], Awaitable[None]],
        stopping: Callable[[], bool],
    ) -> None:
        self._loop = loop
        self._rebuild = rebuild
        self._stopping = stopping
        self.failure: str | None = None  # why the loop last died, if it did
        self.restarts = 0
        self.gave_up = False

    async def run(self) -> None:
        """Run the loop until it returns; after an exception (not a cancellation) rebuild and run it again."""
        deaths: list[float] = []
        while True:
            try:
                await self._loop()
                return
            except Exception as exc:
                self.failure = f"{type(exc).__name__}: {exc}"
                log.critical("the engine task died: %s", self.failure, exc_info=exc)
                now = time.monotonic()
                deaths = [at for at in deaths if now - at < RESTART_WINDOW_S] + [now]
                if len(deaths) > MAX_RESTARTS or self._stopping():
                    self.gave_up = True
                    log.critical("the engine is not restarted (%d deaths); /healthz reports it dead", len(deaths))
                    return
                await self._rebuild()
                self.restarts += 1
                log.warning("engine restarted (restart %d) with the queue rebuilt from the database", self.restarts)
