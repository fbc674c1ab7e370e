"""Post-processing: after the engine commits an image, each plugin's ``cauldron_process_image`` runs on it, off the
GPU path.

The engine only calls ``submit`` (which never blocks); a few worker tasks take (image, plugin) pairs from a queue
and run each call with a timeout. Async implementations run on the loop and are cancelled at their timeout. Sync
ones run on threads of their own: a thread cannot be killed, so one that overruns its timeout keeps its thread
and is counted as hung. A plugin with a hung call is skipped until it returns, and past ``max_hung`` hung calls
every sync call is skipped, so at most ``concurrency + max_hung`` threads exist and hangs cannot pile up. They are
daemon threads (not a ThreadPoolExecutor, whose threads are joined at exit): a hung plugin never holds up stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pluggy

from cauldrond.plugins.interfaces import Annotations
from cauldrond.plugins.runtime import PluginRuntime
from cauldrond.store import ImageRow, Store, utc_now

log = logging.getLogger(__name__)

HOOK = "cauldron_process_image"
DEFAULT_CONCURRENCY = 2
DEFAULT_TIMEOUT_S = 60.0
MAX_ANNOTATIONS = 32
MAX_KEY_LENGTH = 64
MAX_VALUE_LENGTH = 16_384
MAX_ERROR_LENGTH = 1000
QUEUE_LIMIT = 100_000


class InvalidAnnotations(ValueError):
    """A post-processor returned something that is not small ``{str: str}`` annotations."""


class PluginBusy(RuntimeError):
    """The call was skipped because earlier calls are still running past their timeout."""


def validate_annotations(value: object) -> dict[str, str]:
    """``{key: value}`` strings within the size limits, or InvalidAnnotations naming what is wrong."""
    if value is None:
        return {}
    if isinstance(value, Annotations):
        value = value.values
    if not isinstance(value, Mapping):
        raise InvalidAnnotations(f"expected a mapping of str to str or None, got {type(value).__name__}")
    if len(value) > MAX_ANNOTATIONS:
        raise InvalidAnnotations(f"{len(value)} annotations; at most {MAX_ANNOTATIONS} per image and plugin")
    checked: dict[str, str] = {}
    for key, text in value.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable():
            raise InvalidAnnotations(f"annotation keys are printable strings of 1-{MAX_KEY_LENGTH} characters")
        if not isinstance(text, str):
            raise InvalidAnnotations(f"annotation {key!r} is a {type(text).__name__}, not a str")
        if len(text) > MAX_VALUE_LENGTH:
            raise InvalidAnnotations(f"annotation {key!r} has {len(text)} characters; at most {MAX_VALUE_LENGTH}")
        checked[key] = text
    return checked


def image_record(row: ImageRow, images_dir: Path) -> dict[str, Any]:
    """The ``images.get`` shape a post-processor receives (a fresh copy per call)."""
    record = row.to_dict()
    record["url"] = f"/images/{row.id}.png"
    record["file"] = str(images_dir / row.path)
    return record


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line[:MAX_ERROR_LENGTH]


class PostProcessRunner:
    def __init__(
        self,
        runtime: PluginRuntime,
        store: Store,
        images_dir: Path,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_hung: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("post-processing concurrency must be at least 1")
        self._runtime = runtime
        self._store = store
        self._images_dir = images_dir
        self._concurrency = concurrency
        self.timeout_s = timeout_s
        self._max_hung = concurrency if max_hung is None else max_hung
        self._queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: dict[asyncio.Task[None], tuple[int, str]] = {}
        self._hung: dict[str, int] = {}
        self.dropped = 0

    @property
    def hung_threads(self) -> int:
        return sum(self._hung.values())

    @property
    def pending(self) -> int:
        """Calls queued or running."""
        return self._queue.qsize() + len(self._in_flight)

    def start(self) -> None:
        for n in range(self._concurrency):
            task = asyncio.create_task(self._work(), name=f"cauldron-postprocess-{n}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def submit(self, image_id: int) -> None:
        """Queue ``image_id`` for every loaded post-processor. Never blocks and never raises: the engine calls it."""
        for impl in self._runtime.hookimpls(HOOK):
            if not self._runtime.is_configured(impl.plugin_name):
                continue  # it would only return nothing, and its counts would read as work done
            try:
                self._queue.put_nowait((image_id, impl.plugin_name))
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning("post-processing queue full: image %d not given to %s", image_id, impl.plugin_name)

    async def wait_idle(self, timeout: float) -> bool:
        """True once nothing is queued or running (for tests and orderly shutdown), False after ``timeout``."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Cancel the workers; report the calls that will not run. Hung threads are left behind (daemon pool)."""
        lost = self._queue.qsize() + len(self._in_flight)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if lost:
            log.warning("post-processing: %d queued or running call(s) lost at shutdown", lost)
        if self.hung_threads:
            log.warning("post-processing: %d call(s) still running past their timeout at shutdown", self.hung_threads)

    # -- the workers --------------------------------------------------------------------------------------------

    async def _work(self) -> None:
        current = asyncio.current_task()
        assert current is not None
        while True:
            image_id, plugin = await self._queue.get()
            self._in_flight[current] = (image_id, plugin)
            try:
                await self._run_one(image_id, plugin)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("post-processing bookkeeping failed for image %d, plugin %s", image_id, plugin)
            finally:
                self._in_flight.pop(current, None)
                self._queue.task_done()

    def _impl_of(self, plugin: str) -> pluggy.HookImpl | None:
        return next((impl for impl in self._runtime.hookimpls(HOOK) if impl.plugin_name == plugin), None)

    def _timeout_for(self, plugin: str) -> float:
        value = self._runtime.settings.plugin_config(plugin).get("process_timeout_s", self.timeout_s)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
        return self.timeout_s

    async def _run_one(self, image_id: int, plugin: str) -> None:
        impl = self._impl_of(plugin)
        row = await self._store.images.get(image_id)
        if impl is None or row is None:
            return  # the plugin failed since, or the image was dropped: nothing to do
        kwargs = {"image": image_record(row, self._images_dir), "settings": self._runtime.settings}
        timeout = self._timeout_for(plugin)
        started = time.monotonic()
        status, error = "ok", None
        try:
            result = await self._call(plugin, impl, kwargs, timeout)
            annotations = validate_annotations(result)
            if annotations:
                await self._store.annotations.save(image_id, plugin, annotations)
        except TimeoutError:
            status, error = "timeout", f"no result within {timeout:g} s"
        except Exception as exc:
            status, error = "failed", _one_line(exc)
        duration = time.monotonic() - started
        await self._store.plugin_runs.record(image_id, plugin, status, error, duration, utc_now())
        self._count(plugin, status, error)
        if error is not None:
            log.warning("post-processor %s on image %d: %s: %s", plugin, image_id, status, error)

    def _count(self, plugin: str, status: str, error: str | None) -> None:
        record = self._runtime.status_of(plugin)
        if record is None:
            return
        if status == "ok":
            record.processed += 1
        elif status == "timeout":
            record.timed_out += 1
        else:
            record.failed += 1
        if error is not None:
            record.last_error = error

    async def _call(self, plugin: str, impl: pluggy.HookImpl, kwargs: dict[str, Any], timeout: float) -> Any:
        args = [kwargs[name] for name in impl.argnames]
        deadline = time.monotonic() + timeout
        if inspect.iscoroutinefunction(impl.function):
            return await asyncio.wait_for(impl.function(*args), timeout)
        result = await self._in_thread(plugin, impl, args, timeout)
        if inspect.isawaitable(result):  # a plain function that hands back a coroutine
            return await asyncio.wait_for(_awaited(result), max(deadline - time.monotonic(), 0.001))
        return result

    async def _in_thread(self, plugin: str, impl: pluggy.HookImpl, args: list[Any], timeout: float) -> Any:
        if self._hung.get(plugin):
            raise PluginBusy("skipped: an earlier call of this plugin is still running past its timeout")
        if self.hung_threads >= self._max_hung:
            raise PluginBusy(f"skipped: {self.hung_threads} post-processing call(s) are stuck past their timeout")
        future = _in_daemon_thread(f"cauldron-postprocess-{plugin}", impl.function, args)
        try:
            # shield: the timeout must not cancel our view of the thread, whose end is what frees its slot.
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            self._hung[plugin] = self._hung.get(plugin, 0) + 1
            future.add_done_callback(lambda done: self._unhang(plugin, done))
            raise

    def _unhang(self, plugin: str, done: asyncio.Future[Any]) -> None:
        self._hung[plugin] = max(self._hung.get(plugin, 0) - 1, 0)
        error = None if done.cancelled() else done.exception()  # retrieved, so asyncio does not warn about it
        outcome = f"raising {_one_line(error)}" if error is not None else "with a result that is discarded"
        log.info("post-processor %s: a call that overran its timeout has now returned, %s", plugin, outcome)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _in_daemon_thread(name: str, function: Callable[..., Any], args: list[Any]) -> asyncio.Future[Any]:
    """Run ``function(*args)`` on a new daemon thread; its outcome arrives in the returned future."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def deliver(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def body() -> None:
        result, error = None, None
        try:
            result = function(*args)
        except BaseException as exc:
            error = exc
        # RuntimeError: the loop is gone, the daemon stopped while this call overran its timeout.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(deliver, result, error)

    threading.Thread(target=body, name=name, daemon=True).start()
    return future
