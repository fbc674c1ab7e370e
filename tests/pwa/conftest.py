"""Browser tests of the web app: Playwright for Python (sync API) driving Debian's Chromium, headless, against a
real cauldrond subprocess on the tiny model.

Chromium is found at $CAULDRON_CHROMIUM or /usr/bin/chromium (`.ci/run` installs it). Without it these tests skip
on a developer's machine and FAIL under CI=true, so a CI run can never pass by skipping the app.
Screenshots go to $CAULDRON_SCREENSHOTS (default build/screenshots), one per screen and device.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client

from tests.daemon.process import DaemonProcess

ROOT = Path(__file__).resolve().parents[2]
JS_TESTS = Path(__file__).resolve().parent / "js"
SCREENSHOTS = Path(os.environ.get("CAULDRON_SCREENSHOTS", ROOT / "build" / "screenshots"))
DEVICES: dict[str, dict[str, Any]] = {
    # An iPhone 14-class phone and an iPad Pro 12.9-class tablet, portrait, touch.
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 2,
    },
    "tablet": {"viewport": {"width": 1024, "height": 1366}, "has_touch": True, "device_scale_factor": 1},
}
ACTION_TIMEOUT_MS = 30_000  # a 2-core machine running a sweep and a browser at once is slow


def chromium_path() -> str | None:
    configured = os.environ.get("CAULDRON_CHROMIUM")
    for candidate in (configured, "/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_chromium() -> str:
    path = chromium_path()
    if path is not None:
        return path
    message = "Chromium not found (apt-get install -y chromium, or set CAULDRON_CHROMIUM)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + ": browser tests must run in CI", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module, not per session: Playwright's sync API keeps an event loop running on this thread while it is
    open, and pytest-asyncio's tests after the browser modules would find it and never run."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def app_daemon(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[DaemonProcess]:
    """One daemon per test module: starting one costs seconds, and each module's tests share its queue."""
    data_dir = tmp_path_factory.mktemp("pwa") / "data"
    data_dir.mkdir()
    process = DaemonProcess(data_dir, models_dir)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def rpc(daemon: DaemonProcess, method: str, params: dict[str, Any] | None = None) -> Any:
    """One call with the local token, for a test to set up or check what the browser does. On its own thread:
    Playwright's sync API already runs an event loop on this one."""

    async def call() -> Any:
        async with Client(daemon.url, daemon.token) as client:
            return await client.call(method, **(params or {}))

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, call()).result(timeout=120)


def pair_context(
    browser: Any, daemon: DaemonProcess, device: str, name: str | None = None, service_workers: str = "block"
) -> Any:
    """A browser context (phone or tablet) paired with ``daemon`` through POST /pair, as the pair screen does.

    The service worker is blocked unless a test asks for it (the offline and install tests do): installing it
    downloads the whole shell again in every context, which costs this 2-core machine more than the screens
    under test. The app runs the same without it (registration failing is handled: an old browser has none).
    """
    context = browser.new_context(**DEVICES[device], base_url=daemon.url, service_workers=service_workers)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    code = rpc(daemon, "pairing.create_code")["code"]
    reply = context.request.post(
        "/pair",
        data=json.dumps({"code": code, "device_name": name or f"test {device}"}),
        headers={"Content-Type": "application/json", "Origin": daemon.url},
    )
    assert reply.ok, reply.text()
    assert any(cookie["name"] == "cauldron_device" for cookie in context.cookies()), "the pairing cookie was not kept"
    return context


class PageProblems:
    """Uncaught errors and CSP violations on a page: a test fails on any (they are bugs, not noise)."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on(
            "console",
            lambda message: (
                self.errors.append(f"console: {message.text}")
                if message.type == "error" and "Content Security Policy" in message.text
                else None
            ),
        )

    def check(self) -> None:
        assert not self.errors, "\n".join(self.errors)


def open_page(context: Any, path: str = "/") -> tuple[Any, PageProblems]:
    page = context.new_page()
    problems = PageProblems(page)
    page.goto(path)
    return page, problems


def screenshot(page: Any, screen: str, device: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{screen}-{device}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def run_js_unit_tests(context: Any, module: str) -> dict[str, Any]:
    """Run tests/pwa/js/<module> in the browser, against the app's modules as the daemon serves them.

    The test files are served under /__tests__/ by Playwright itself (the daemon never ships them), with the app's
    own CSP, so a test that needed eval or inline script would fail here as it would in the app.
    """
    from cauldrond.web.app_shell import CONTENT_SECURITY_POLICY

    def serve(route: Any) -> None:
        name = route.request.url.split("/__tests__/", 1)[1].split("?", 1)[0]
        path = (JS_TESTS / name).resolve()
        if not path.is_relative_to(JS_TESTS) or not path.is_file():
            route.fulfill(status=404, body="no such test file")
            return
        kind = "text/html" if path.suffix == ".html" else "text/javascript"
        route.fulfill(
            status=200,
            body=path.read_bytes(),
            headers={"Content-Type": kind, "Content-Security-Policy": CONTENT_SECURITY_POLICY},
        )

    page = context.new_page()
    problems = PageProblems(page)
    page.route("**/__tests__/**", serve)
    page.goto(f"/__tests__/runner.html?module={module}")
    page.locator("#results-ready").wait_for(state="attached")
    results: dict[str, Any] = page.evaluate("() => window.__results")
    problems.check()
    page.close()
    return results


def assert_accessible(page: Any, screen: str) -> None:
    """axe-core (bundled by axe-playwright-python) on the page as it is: no critical or serious violation."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    severe = [v for v in violations if v.get("impact") in ("critical", "serious")]
    details = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}" for v in severe]
    assert not severe, f"{screen}: " + "\n".join(details)


def tab_until(page: Any, selector: str, max_presses: int = 60) -> None:
    """Press Tab until the element matching ``selector`` has focus: proves it is reachable by keyboard."""
    target = page.locator(selector).first
    for _ in range(max_presses):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{selector} was not reached with {max_presses} Tab presses")


def has_visible_focus(page: Any) -> bool:
    """The focused element draws an outline (the app's :focus-visible style), so keyboard users see where they are."""
    style = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]; }"
    )
    return bool(style[0] != "none" and style[1] not in ("0px", ""))
