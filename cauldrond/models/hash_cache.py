"""Where model file hashes are remembered: the daemon's store, read and written from worker threads.

Hashing happens on threads (the engine's worker when a model loads, ``asyncio.to_thread`` for ``models.list``);
the store lives on the event loop. ``StoreHashCache`` hands each lookup to the loop and waits for it, so a file
is hashed once per version whichever thread asks first. Without a daemon (the command line, some tests) the
provider falls back to a JSON file in the models dir (loading.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

from cauldrond.store.model_hashes import ModelHashRepository

T = TypeVar("T")
_WAIT_S = 30.0  # a store call is milliseconds; this only bounds a stuck loop


class HashCache(Protocol):
    def lookup(self, key: str, size_bytes: int, mtime_ns: int) -> str | None: ...

    def remember(self, key: str, size_bytes: int, mtime_ns: int, sha256: str) -> None: ...


class StoreHashCache:
    """A HashCache over the store's ``model_hashes`` table; call it from any thread but the loop's own."""

    def __init__(self, repository: ModelHashRepository, loop: asyncio.AbstractEventLoop) -> None:
        self._repository = repository
        self._loop = loop

    def lookup(self, key: str, size_bytes: int, mtime_ns: int) -> str | None:
        return self._wait(self._repository.get(key, size_bytes, mtime_ns))

    def remember(self, key: str, size_bytes: int, mtime_ns: int, sha256: str) -> None:
        self._wait(self._repository.put(key, size_bytes, mtime_ns, sha256))

    def _wait(self, call: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            call.close()
            raise RuntimeError("StoreHashCache blocks: call it from a worker thread, not the event loop")
        future = asyncio.run_coroutine_threadsafe(call, self._loop)
        return future.result(timeout=_WAIT_S)
