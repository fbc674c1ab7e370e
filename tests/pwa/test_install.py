"""Installability in Chromium: the manifest parses with the fields an install needs and its icons are real PNGs of
the stated sizes (read by Pillow), the service worker controls the page, and Chromium itself reports no
installability errors. And a new version of the app replaces the old one on the next load, without a mix."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

from tests.daemon.process import DaemonProcess
from tests.pwa.conftest import ACTION_TIMEOUT_MS, DEVICES, open_page, require_chromium, run_js_unit_tests
from tests.pwa.service_worker_helpers import CACHE_NAMES, CONTROLLER_SCRIPT, controlled_by_service_worker, poll

FETCH_TEXT = "(url) => fetch(url).then((response) => response.text())"


def plain_context(browser: Any, daemon: DaemonProcess) -> Any:
    # Not paired: the shell, the manifest and the worker are public, and installing starts at the pair screen.
    context = browser.new_context(**DEVICES["phone"], base_url=daemon.url)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    return context


def test_the_manifest_parses_and_its_icons_are_what_it_says(browser: Any, app_daemon: DaemonProcess) -> None:
    context = plain_context(browser, app_daemon)
    reply = context.request.get("/manifest.webmanifest")
    assert reply.ok
    assert reply.headers["content-type"].startswith("application/manifest+json")
    manifest = json.loads(reply.text())
    assert manifest["name"] == "Shadow Cauldron" and manifest["short_name"]
    assert manifest["start_url"] == "/" and manifest["scope"] == "/"
    assert manifest["display"] == "standalone"
    assert manifest["theme_color"].startswith("#") and manifest["background_color"].startswith("#")
    sizes: dict[str, set[str]] = {}
    for icon in manifest["icons"]:
        served = context.request.get(icon["src"])
        assert served.ok, icon["src"]
        image = Image.open(io.BytesIO(served.body()))
        assert image.format == "PNG" and icon["type"] == "image/png"
        assert f"{image.width}x{image.height}" == icon["sizes"], icon["src"]
        sizes.setdefault(icon.get("purpose", "any"), set()).add(icon["sizes"])
    assert {"192x192", "512x512"} <= sizes["any"]
    assert "512x512" in sizes["maskable"]
    context.close()


def test_chromium_finds_the_app_installable_and_controlled_after_a_reload(
    browser: Any, app_daemon: DaemonProcess, tmp_path: Path
) -> None:
    # A profile on disk: Chromium never offers to install from an incognito context (Playwright's new_context()),
    # it reports "in-incognito" there.
    context = browser.browser_type.launch_persistent_context(
        tmp_path / "profile",
        executable_path=require_chromium(),
        headless=True,
        args=["--no-sandbox"],
        base_url=app_daemon.url,
        **DEVICES["phone"],
    )
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page, problems = open_page(context, "/")
    page.get_by_role("heading", name="Pair this device").wait_for()
    controlled_by_service_worker(page)
    page.reload()
    page.get_by_role("heading", name="Pair this device").wait_for()
    assert "/sw.js?v=" in page.evaluate(CONTROLLER_SCRIPT)
    session = context.new_cdp_session(page)
    manifest = session.send("Page.getAppManifest")
    assert manifest["errors"] == [], manifest["errors"]
    assert manifest["url"].endswith("/manifest.webmanifest")
    installability = session.send("Page.getInstallabilityErrors")
    assert installability["installabilityErrors"] == []
    problems.check()
    context.close()


def test_a_new_version_replaces_the_old_on_the_next_load(browser: Any, app_daemon: DaemonProcess) -> None:
    context = plain_context(browser, app_daemon)
    page, problems = open_page(context, "/")
    page.get_by_role("heading", name="Pair this device").wait_for()
    old_script = controlled_by_service_worker(page)
    old_caches = [name for name in page.evaluate(CACHE_NAMES) if name.startswith("cauldron-shell-")]
    assert len(old_caches) == 1
    shell = json.loads(context.request.get("/shell.json").text())
    assert old_caches == [f"cauldron-shell-{shell['version']}"]

    # The daemon "installs" a new version: /shell.json names it and one file changed. Playwright's routes stand in
    # for the new files on disk (the repository's pwa/ is shared by every test running at once).
    marker = "/* version next-test */"
    context.route(
        "**/shell.json",
        lambda route: route.fulfill(json={"version": "next-test", "files": shell["files"]}),
    )

    def changed_css(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=response.text() + marker)

    context.route("**/app/css/shell.css", changed_css)
    page.reload()  # this load still runs the old version; it registers the new worker
    page.get_by_role("heading", name="Pair this device").wait_for()
    new_script = poll(
        lambda: (page.evaluate(CONTROLLER_SCRIPT) or "").endswith("?v=next-test") and page.evaluate(CONTROLLER_SCRIPT),
        "the new worker took over",
    )
    assert new_script != old_script
    shell_caches = poll(
        lambda: (
            [name for name in page.evaluate(CACHE_NAMES) if name.startswith("cauldron-shell-")]
            == ["cauldron-shell-next-test"]
        ),
        "the old version's cache deleted",
    )
    assert shell_caches

    # The next load comes wholly from the new version's cache: the changed file, although the network (the route
    # is gone) serves the old one again.
    context.unroute("**/app/css/shell.css")
    page.reload()
    page.get_by_role("heading", name="Pair this device").wait_for()
    assert page.evaluate(FETCH_TEXT, "/app/css/shell.css").endswith(marker)
    assert not context.request.get("/app/css/shell.css").text().endswith(marker)
    problems.check()
    context.close()


def test_the_thumbnail_cache_bound_unit_tests_pass_in_the_browser(browser: Any, app_daemon: DaemonProcess) -> None:
    context = browser.new_context(base_url=app_daemon.url)
    results = run_js_unit_tests(context, "thumb_eviction.test.js")
    context.close()
    assert not results["failed"], results["failed"]
    assert len(results["passed"]) == 4
