"""Helpers for the service-worker tests (test_offline.py, test_install.py): what the page's worker and caches
hold, read through page.evaluate (which the app's CSP allows: it is the DevTools protocol, not eval)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

WAIT_S = 60.0

CONTROLLER_SCRIPT = "() => navigator.serviceWorker.controller ? navigator.serviceWorker.controller.scriptURL : null"
NOTIFICATIONS = """() => navigator.serviceWorker.ready
    .then((registration) => registration.getNotifications())
    .then((list) => list.map((n) => ({ title: n.title, body: n.body, data: n.data })))"""
CACHED_URLS = """async (name) => {
    const cache = await caches.open(name);
    return (await cache.keys()).map((request) => new URL(request.url).pathname);
}"""
CACHE_NAMES = "() => caches.keys()"


def poll(check: Callable[[], Any], what: str = "condition", timeout: float = WAIT_S) -> Any:
    """``check()`` until it is truthy, for at most ``timeout`` seconds (each check is a round trip to the page)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.2)  # pacing between page round trips, not synchronisation: the loop waits on the condition


def controlled_by_service_worker(page: Any) -> str:
    page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    script: str = poll(lambda: page.evaluate(CONTROLLER_SCRIPT), "the service worker controls the page")
    return script
