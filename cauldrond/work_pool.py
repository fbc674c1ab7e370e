"""Bounded pools of threads for CPU-heavy work (imports, grids, exports, analysis), apart from asyncio's default
executor, so a burst of heavy requests can never take the threads that cheap requests (``system.info``) use.

The threads are daemon threads that the pool starts on demand: when the daemon stops, ``close()`` drops the
work still waiting and the process exits without joining work still running (asyncio's default executor and
``concurrent.futures`` pools are joined at exit, which kept a stopped daemon burning CPU for minutes; issue 9).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


class PoolClosed(RuntimeError):
    """The daemon is stopping; the work was not done."""


class PoolBusy(RuntimeError):
    """Too much work is already waiting; the message says how much."""


@dataclass
class _Job:
    run: Callable[[], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    abandoned: threading.Event = field(default_factory=threading.Event)


class WorkPool:
    def __init__(self, name: str, workers: int, max_waiting: int = 64) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self.name = name
        self.workers = workers
        self.max_waiting = max_waiting
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._waiting = 0
        self._running = 0
        self.peak_running = 0
        self.completed = 0
        self.closed = threading.Event()

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return self._waiting

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` on one of this pool's threads (with the caller's context variables)."""
        if self.closed.is_set():
            raise PoolClosed(f"the {self.name} pool is closed: the daemon is stopping")
        with self._lock:
            if self._waiting >= self.max_waiting:
                raise PoolBusy(f"{self._waiting} {self.name} tasks are already waiting; try again later")
            self._waiting += 1
            if len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        job = _Job(lambda: context.run(function, *args), loop.create_future(), loop)
        self._jobs.put(job)
        try:
            result: T = await job.future
        except asyncio.CancelledError:
            job.abandoned.set()  # the caller went away: skip it if it has not started
            raise
        return result

    def close(self) -> None:
        """Refuse new work, drop what waits; running work is left to finish or to die with the process."""
        self.closed.set()
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._lock:
                self._waiting -= 1
            if job.abandoned.is_set():
                continue
            if self.closed.is_set():
                self._settle(job, None, PoolClosed(f"the {self.name} pool closed before this work started"))
                continue
            with self._lock:
                self._running += 1
                self.peak_running = max(self.peak_running, self._running)
            result: Any = None
            failure: BaseException | None = None
            try:
                result = job.run()
            except BaseException as error:  # handed to the awaiting coroutine, whatever it is
                failure = error
            with self._lock:  # counted before the caller hears of it, so its figures are never behind
                self._running -= 1
                self.completed += 1
            self._settle(job, result, failure)

    @staticmethod
    def _settle(job: _Job, result: Any, error: BaseException | None) -> None:
        def settle() -> None:
            if job.future.done():
                return
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

        # A closed loop raises RuntimeError: nobody waits for this any more.
        with contextlib.suppress(RuntimeError):
            job.loop.call_soon_threadsafe(settle)
