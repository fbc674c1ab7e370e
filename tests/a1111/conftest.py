"""One real daemon per test module, run on an event loop of its own in a thread, so the synchronous clients
real users run against A1111 (webuiapi, requests) talk to it over real HTTP from the test's thread."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cauldron_client import Client

from cauldrond.daemon import Daemon
from tests.conftest import make_settings

T = TypeVar("T")
START_TIMEOUT_S = 120.0


class DaemonThread:
    """A Daemon started and stopped on its own loop; ``run`` executes a coroutine there and returns its result."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="a1111-test-daemon", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.run(self.daemon.start, timeout=START_TIMEOUT_S)

    def stop(self) -> None:
        try:
            self.run(self.daemon.stop, timeout=START_TIMEOUT_S)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=30)

    def run(self, make: Callable[[], Awaitable[T]], timeout: float = 120.0) -> T:
        async def wrapped() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.daemon.bound_port}"

    @property
    def api(self) -> str:
        return self.url + "/sdapi/v1"

    @property
    def token(self) -> str:
        return self.daemon.settings.token_path.read_text().strip()

    def basic(self, user: str = "anyone") -> dict[str, str]:
        """The header Open WebUI and SillyTavern build from "user:password"."""
        encoded = base64.b64encode(f"{user}:{self.token}".encode()).decode()
        return {"Authorization": f"Basic {encoded}"}

    def rpc(self, method: str, **params: Any) -> Any:
        async def call() -> Any:
            async with Client(self.url, self.token) as client:
                return await client.call(method, **params)

        return self.run(call)


def start_daemon(data_dir: Path, models_dir: Path, **overrides: Any) -> DaemonThread:
    running = DaemonThread(Daemon(make_settings(data_dir, models_dir, **overrides)))
    running.start()
    return running


@pytest.fixture(scope="module")
def a1111(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[DaemonThread]:
    running = start_daemon(tmp_path_factory.mktemp("a1111") / "data", models_dir, max_cells=12)
    try:
        yield running
    finally:
        running.stop()


def a1111_experiments(daemon: DaemonThread) -> list[dict[str, Any]]:
    listed = daemon.rpc("experiments.list", limit=1000)["experiments"]
    return [e for e in listed if e["kind"] == "a1111"]


def poll(check: Callable[[], T | None], timeout: float = 120.0, interval: float = 0.05) -> T:
    """``tests/waiting.until`` for the synchronous clients here: the check's first truthy value, or
    AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
