"""The Now screen in a real browser against a real daemon on the tiny model: the queue in the daemon's order, moving
an experiment to the top, pause and resume, a live preview frame and a moving step counter, the same run seen from
a second device and after a reload, and cancelling with a confirmation; plus its pure logic as in-browser unit tests."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.daemon.process import DaemonProcess
from tests.pwa.conftest import (
    assert_accessible,
    has_visible_focus,
    open_page,
    pair_context,
    rpc,
    run_js_unit_tests,
    screenshot,
    tab_until,
)
from tests.pwa.service_worker_helpers import poll

SMALL = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64, "steps": 2, "sampler": "Euler"}
# Long enough to watch on any machine (48 cells x 500 steps); the test cancels it, so it is bounded by the test.
LONG = {**SMALL, "steps": 500}
FIRST_RUN_MS = 180_000  # the first batch loads the model, on a shared 2-core machine


def create(daemon: DaemonProcess, name: str, base: dict[str, Any], axes: dict[str, Any]) -> int:
    experiment_id: int = rpc(daemon, "experiments.create", {"name": name, "base": base, "axes": axes})["experiment"][
        "id"
    ]
    return experiment_id


def first_queued_experiment(daemon: DaemonProcess) -> int | None:
    jobs = rpc(daemon, "queue.list", {"limit": 1})["jobs"]
    return jobs[0]["experiment_id"] if jobs else None


def status_of(daemon: DaemonProcess, experiment_id: int) -> str:
    status: str = rpc(daemon, "experiments.get", {"experiment_id": experiment_id, "jobs_limit": 0})["experiment"][
        "status"
    ]
    return status


def test_queue_order_and_run_rate_unit_tests_pass_in_the_browser(browser: Any, app_daemon: DaemonProcess) -> None:
    context = browser.new_context(base_url=app_daemon.url)
    for module, count in (("queue_order.test.js", 9), ("run_rate.test.js", 6)):
        results = run_js_unit_tests(context, module)
        assert not results["failed"], results["failed"]
        assert len(results["passed"]) == count, results
    context.close()


def test_watch_reorder_pause_and_cancel_a_run_from_the_now_screen(browser: Any, app_daemon: DaemonProcess) -> None:
    rpc(app_daemon, "queue.pause")
    first = create(app_daemon, "Small one", SMALL, {"seed": [1, 2]})
    second = create(app_daemon, "Small two", SMALL, {"seed": [3, 4]})
    long_run = create(app_daemon, "Long run", LONG, {"seed": "1-48"})
    assert first_queued_experiment(app_daemon) == first  # equal priorities: the oldest is served first

    phone = pair_context(browser, app_daemon, "phone")
    page, problems = open_page(phone, "/")
    rows = page.locator(".queue-row")
    expect(rows).to_have_count(3)
    assert [rows.nth(i).get_attribute("data-experiment-id") for i in range(3)] == [
        str(first),
        str(second),
        str(long_run),
    ]
    expect(page.get_by_role("status").filter(has_text="Paused")).to_be_visible()
    assert_accessible(page, "now (paused queue)")
    page.emulate_media(color_scheme="dark")
    assert_accessible(page, "now (paused queue, dark theme)")
    page.emulate_media(color_scheme="light")
    tab_until(page, "button:has-text('Resume the queue')")
    assert has_visible_focus(page)

    # To the top by touch: the daemon's queue now serves the long run first.
    page.get_by_role("button", name="Move Long run to the top").click()
    poll(lambda: first_queued_experiment(app_daemon) == long_run)
    expect(rows.first).to_have_attribute("data-experiment-id", str(long_run))
    expect(page.get_by_role("button", name="Move Long run to the top")).to_be_disabled()

    page.get_by_role("button", name="Resume the queue").click()
    poll(lambda: rpc(app_daemon, "queue.list", {"limit": 1})["paused"] is False)

    # The running batch: a preview frame (an object URL made from the event's bytes) and a step counter that moves.
    running = page.locator(".now-running")
    expect(running.get_by_role("link", name="Long run")).to_be_visible(timeout=FIRST_RUN_MS)
    expect(page.locator(".now-preview img[src^='blob:']")).to_be_visible(timeout=FIRST_RUN_MS)
    counter = page.locator(".now-step-count")
    expect(counter).not_to_have_attribute("data-step", "")
    seen = counter.get_attribute("data-step")
    expect(counter).not_to_have_attribute("data-step", seen or "", timeout=FIRST_RUN_MS)
    page.evaluate("window.scrollTo(0, 0)")  # the top of the screen, under the sticky bar
    screenshot(page, "now", "phone")

    # Another device sees the same run.
    tablet = pair_context(browser, app_daemon, "tablet")
    other, other_problems = open_page(tablet, "/")
    expect(other.locator(".now-running").get_by_role("link", name="Long run")).to_be_visible()
    expect(other.locator(".now-preview img[src^='blob:']")).to_be_visible(timeout=FIRST_RUN_MS)
    screenshot(other, "now", "tablet")
    assert_accessible(other, "now (tablet, running)")
    other_problems.check()
    tablet.close()

    # A reload re-attaches to the same running experiment.
    page.reload()
    expect(page.locator(".now-running").get_by_role("link", name="Long run")).to_be_visible()
    expect(page.locator(".now-step-count")).not_to_have_attribute("data-step", "", timeout=FIRST_RUN_MS)

    page.get_by_role("button", name="Pause the queue").click()
    poll(lambda: rpc(app_daemon, "queue.list", {"limit": 1})["paused"] is True)
    page.get_by_role("button", name="Resume the queue").click()
    poll(lambda: rpc(app_daemon, "queue.list", {"limit": 1})["paused"] is False)

    # Cancel asks first; Escape keeps the experiment, the dialog's button cancels it.
    page.get_by_role("button", name="Cancel Long run").click()
    dialog = page.get_by_role("dialog", name="Cancel Long run?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Keep it")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert status_of(app_daemon, long_run) in ("queued", "running")
    page.get_by_role("button", name="Cancel Long run").click()
    dialog.get_by_role("button", name="Cancel experiment").click()
    poll(lambda: status_of(app_daemon, long_run) == "cancelled")
    expect(page.locator(f".queue-row[data-experiment-id='{long_run}']")).to_have_count(0)
    problems.check()
    phone.close()
