"""The app shell in a real browser: it loads under its strict CSP with no errors, on a phone and a tablet, and its
unit-level logic passes in the same browser."""

from __future__ import annotations

from typing import Any

import pytest

from tests.daemon.process import DaemonProcess
from tests.pwa.conftest import (
    DEVICES,
    assert_accessible,
    has_visible_focus,
    open_page,
    pair_context,
    run_js_unit_tests,
    tab_until,
)


@pytest.mark.parametrize("device", sorted(DEVICES))
def test_the_shell_loads_signed_in_without_csp_violations(browser: Any, app_daemon: DaemonProcess, device: str) -> None:
    context = pair_context(browser, app_daemon, device)
    page, problems = open_page(context, "/")
    page.get_by_role("navigation", name="Screens").wait_for()
    assert page.get_by_role("link", name="Gallery").is_visible()
    problems.check()
    context.close()


def test_reconnect_backoff_unit_tests_pass_in_the_browser(browser: Any, app_daemon: DaemonProcess) -> None:
    context = browser.new_context(base_url=app_daemon.url)
    results = run_js_unit_tests(context, "backoff.test.js")
    context.close()
    assert not results["failed"], results["failed"]
    assert len(results["passed"]) == 3


def test_the_shell_is_accessible_and_keyboard_reachable(browser: Any, app_daemon: DaemonProcess) -> None:
    context = pair_context(browser, app_daemon, "phone")
    page, problems = open_page(context, "/")
    page.get_by_role("navigation", name="Screens").wait_for()
    assert_accessible(page, "shell")
    tab_until(page, "a.tab[href='/gallery']")
    assert has_visible_focus(page)
    problems.check()
    context.close()
