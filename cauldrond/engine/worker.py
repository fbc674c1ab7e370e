"""One dedicated thread for all torch work, so the event loop never runs torch."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Task = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class GpuWorker:
    """A single daemon thread that runs submitted callables one at a time.

    A daemon thread (rather than ThreadPoolExecutor, whose threads are joined at interpreter exit) lets the
    process exit on SIGTERM even while a model load that cannot be interrupted is still running; the jobs it was
    working on have already been put back in the queue by then.
    """

    def __init__(self, name: str = "cauldron-gpu") -> None:
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self.busy = False  # True while a submitted callable runs
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    async def run(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        # In the caller's context, as asyncio.to_thread does: log lines from the thread name the caller's jobs.
        self._tasks.put((functools.partial(contextvars.copy_context().run, fn), loop, future))
        return await future

    def shutdown(self) -> None:
        self._tasks.put(None)

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while (task := self._tasks.get()) is not None:
            fn, loop, future = task
            result: Any = None
            error: BaseException | None = None
            self.busy = True
            try:
                result = fn()
            except BaseException as exc:  # handed to the awaiting coroutine, which decides
                error = exc
            finally:
                self.busy = False
            # RuntimeError: the loop closed while we worked; the daemon is exiting and nobody waits.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
