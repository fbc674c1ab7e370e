"""The app without the daemon and across reconnects, in a real browser against a real daemon: the service worker
controls the page and serves the shell when the daemon is down (the offline screen says it is retrying and the
app opens by itself when the daemon is back), a dropped socket resynchronises what changed meanwhile, viewed
thumbnails are cached and full images are not, and an ended experiment becomes a system notification (or an
in-app message without permission)."""

from __future__ import annotations

from typing import Any

from tests.conftest import FAST
from tests.daemon.process import DaemonProcess
from tests.pwa.conftest import assert_accessible, open_page, pair_context, rpc, run_js_unit_tests, screenshot
from tests.pwa.service_worker_helpers import (
    CACHE_NAMES,
    CACHED_URLS,
    NOTIFICATIONS,
    WAIT_S,
    controlled_by_service_worker,
    poll,
)


def wait_finished(daemon: DaemonProcess, experiment_id: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        experiment: dict[str, Any] = rpc(daemon, "experiments.get", {"experiment_id": experiment_id})["experiment"]
        counts = experiment["counts"]
        return experiment if counts["queued"] == 0 and counts["running"] == 0 else None

    finished: dict[str, Any] = poll(done, f"experiment {experiment_id} finished", timeout=180)
    return finished


def test_the_shell_opens_without_the_daemon_and_the_app_resynchronises(browser: Any, app_daemon: DaemonProcess) -> None:
    context = pair_context(browser, app_daemon, "phone", service_workers="allow")
    page, problems = open_page(context, "/experiments")
    page.get_by_role("navigation", name="Screens").wait_for()
    assert "/sw.js?v=" in controlled_by_service_worker(page)

    # The socket drops (the daemon stops); the page says so and keeps what it showed.
    app_daemon.stop()
    banner = page.get_by_role("status").filter(has_text="The daemon is unreachable. Retrying")
    banner.wait_for()
    # Offline while the daemon comes back and an experiment is made elsewhere: the page cannot see it yet.
    context.set_offline(True)
    app_daemon.start()
    made = rpc(app_daemon, "experiments.create", {"name": "made while away", "base": FAST, "axes": {"seed": [1]}})
    assert banner.is_visible(), "the page reconnected while offline"
    assert not page.get_by_text("made while away").is_visible()
    # Back online: it reconnects at once ('online') and resynchronises; the new experiment shows without a reload.
    context.set_offline(False)
    page.get_by_text("made while away").first.wait_for()
    banner.wait_for(state="hidden")
    wait_finished(app_daemon, made["experiment"]["id"])

    # A reload with the daemon down: the service worker serves the shell, which says the daemon is unreachable.
    app_daemon.stop()
    page.reload()
    page.get_by_role("heading", name="Waiting for the daemon").wait_for()
    assert page.get_by_role("status").filter(has_text="The daemon is unreachable. Retrying").is_visible()
    screenshot(page, "offline", "phone")
    assert_accessible(page, "offline")
    page.set_viewport_size({"width": 1024, "height": 1366})
    screenshot(page, "offline", "tablet")
    # The daemon comes back: the app opens by itself, signed in.
    app_daemon.start()
    page.get_by_role("navigation", name="Screens").wait_for(timeout=WAIT_S * 1000)
    problems.check()
    context.close()


def test_an_ended_experiment_notifies_and_its_viewed_thumbnail_is_cached(
    browser: Any, app_daemon: DaemonProcess
) -> None:
    allowed = pair_context(browser, app_daemon, "phone", name="notified phone", service_workers="allow")
    allowed.grant_permissions(["notifications"], origin=app_daemon.url)
    allowed_page, allowed_problems = open_page(allowed, "/")
    allowed_page.get_by_role("navigation", name="Screens").wait_for()
    controlled_by_service_worker(allowed_page)
    assert not allowed_page.get_by_role("button", name="Notify me when experiments finish").is_visible()
    plain = pair_context(browser, app_daemon, "tablet", name="plain tablet", service_workers="allow")
    plain_page, plain_problems = open_page(plain, "/")
    plain_page.get_by_role("navigation", name="Screens").wait_for()
    # Not asked yet: the control that asks (from a tap) is offered.
    assert plain_page.get_by_role("button", name="Notify me when experiments finish").is_visible()

    made = rpc(app_daemon, "experiments.create", {"name": "notify me", "base": FAST, "axes": {"seed": [7]}})
    experiment_id = made["experiment"]["id"]
    finished = wait_finished(app_daemon, experiment_id)
    assert finished["counts"]["done"] == 1

    shown = poll(lambda: allowed_page.evaluate(NOTIFICATIONS), "a system notification")
    assert [n["title"] for n in shown] == ["notify me finished"]
    assert shown[0]["body"] == "1 image(s) made."
    assert shown[0]["data"] == {"url": f"/experiments/{experiment_id}"}
    plain_page.get_by_role("status").filter(has_text="notify me finished: 1 image(s) made.").wait_for()
    assert plain_page.evaluate(NOTIFICATIONS) == []

    # A thumbnail the page views is kept for offline; the full image is not.
    image_id = rpc(app_daemon, "experiments.get", {"experiment_id": experiment_id})["jobs"][0]["image_id"]
    fetched = allowed_page.evaluate(
        "async (urls) => Promise.all(urls.map((u) => fetch(u).then((r) => r.status)))",
        [f"/thumbs/256/{image_id}.webp", f"/images/{image_id}.png"],
    )
    assert fetched == [200, 200]
    thumbs = poll(lambda: allowed_page.evaluate(CACHED_URLS, "cauldron-thumbs"), "the thumbnail cached")
    assert thumbs == [f"/thumbs/256/{image_id}.webp"]
    for name in allowed_page.evaluate(CACHE_NAMES):
        assert f"/images/{image_id}.png" not in allowed_page.evaluate(CACHED_URLS, name), name
    allowed_problems.check()
    plain_problems.check()
    allowed.close()
    plain.close()


def test_drafts_survive_a_reload_until_cleared_unit_tests_in_the_browser(
    browser: Any, app_daemon: DaemonProcess
) -> None:
    context = browser.new_context(base_url=app_daemon.url)
    results = run_js_unit_tests(context, "draft.test.js")
    context.close()
    assert not results["failed"], results["failed"]
    assert len(results["passed"]) == 5
