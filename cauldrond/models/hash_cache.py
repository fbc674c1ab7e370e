"""Where file hashes are remembered: the daemon's store, read and written from worker threads.

Hashing happens on threads (the engine's worker when a model loads, ``asyncio.to_thread`` for ``models.list``);
the store lives on the event loop. ``StoreHashCache`` hands each lookup to the loop and waits for it, so a file
is hashed once per version whichever thread asks first. Model files go to ``store.model_hashes``
(``StoreHashCache``); LoRA, VAE and embedding files to ``store.extra_network_hashes`` (``StoreExtraHashCache``),
whose key also names the algorithm (a LoRA's A1111 hash covers only its tensor data). Without a daemon (the
command line, some tests) the provider falls back to a JSON file in the models dir for models (loading.py) and to
memory for extra networks (extras_catalogue.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

from cauldrond.store.extra_network_hashes import ExtraNetworkHashRepository
from cauldrond.store.model_hashes import ModelHashRepository

T = TypeVar("T")
_WAIT_S = 30.0  # a store call is milliseconds; this only bounds a stuck loop


class HashCache(Protocol):
    def lookup(self, key: str, size_bytes: int, mtime_ns: int) -> str | None: ...

    def remember(self, key: str, size_bytes: int, mtime_ns: int, sha256: str) -> None: ...


class ExtraHashCache(Protocol):
    """File hashes by path, algorithm, size and mtime (extras_catalogue's algorithms)."""

    def lookup(self, path: str, algorithm: str, size_bytes: int, mtime_ns: int) -> str | None: ...

    def remember(self, path: str, algorithm: str, size_bytes: int, mtime_ns: int, sha256: str) -> None: ...


class _LoopBridge:
    """Runs a store coroutine on the daemon's loop from a worker thread and waits for its result."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def _wait(self, call: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            call.close()
            raise RuntimeError("a store hash cache blocks: call it from a worker thread, not the event loop")
        future = asyncio.run_coroutine_threadsafe(call, self._loop)
        return future.result(timeout=_WAIT_S)


class StoreHashCache(_LoopBridge):
    """A HashCache over the store's ``model_hashes`` table; call it from any thread but the loop's own."""

    def __init__(self, repository: ModelHashRepository, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._repository = repository

    def lookup(self, key: str, size_bytes: int, mtime_ns: int) -> str | None:
        return self._wait(self._repository.get(key, size_bytes, mtime_ns))

    def remember(self, key: str, size_bytes: int, mtime_ns: int, sha256: str) -> None:
        self._wait(self._repository.put(key, size_bytes, mtime_ns, sha256))


class StoreExtraHashCache(_LoopBridge):
    """An ExtraHashCache over the store's ``extra_network_hashes`` table; from any thread but the loop's own."""

    def __init__(self, repository: ExtraNetworkHashRepository, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._repository = repository

    def lookup(self, path: str, algorithm: str, size_bytes: int, mtime_ns: int) -> str | None:
        return self._wait(self._repository.get(path, algorithm, size_bytes, mtime_ns))

    def remember(self, path: str, algorithm: str, size_bytes: int, mtime_ns: int, sha256: str) -> None:
        self._wait(self._repository.put(path, algorithm, size_bytes, mtime_ns, sha256))
