"""The pair screen under the daemon's lockout: after 5 wrong codes from one address the 6th try is refused with
the daemon's lockout message, even with a good code, and nothing is paired. A module of its own (its own
daemon): the lockout holds 127.0.0.1 for 15 minutes, which would stop every other pairing in a shared module."""

from __future__ import annotations

from typing import Any

from tests.daemon.process import DaemonProcess
from tests.pwa.conftest import ACTION_TIMEOUT_MS, DEVICES, open_page, rpc

MAX_FAILURES = 5  # docs/lan.md: "Five wrong codes from one address lock it out of pairing for 15 minutes"


def test_the_lockout_is_shown_with_the_daemons_message_and_pairs_nothing(
    browser: Any, app_daemon: DaemonProcess
) -> None:
    context = browser.new_context(**DEVICES["phone"], base_url=app_daemon.url)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page, problems = open_page(context, "/pair")
    code_field = page.get_by_label("Code", exact=True)
    error = page.locator("#pair-error")
    for attempt in range(1, MAX_FAILURES + 1):
        code_field.fill(f"WRONG{attempt:03}")
        page.get_by_role("button", name="Pair").click()
        left = MAX_FAILURES - attempt
        page.locator("#pair-error", has_text=f"{left} attempt(s) left").wait_for()
        assert error.get_attribute("data-error") == "code_wrong"

    good = rpc(app_daemon, "pairing.create_code")["code"]
    code_field.fill(good)
    page.get_by_label("Device name").fill("locked phone")
    page.get_by_role("button", name="Pair").click()
    page.locator("#pair-error[data-error='locked_out']").wait_for()
    text = error.inner_text()
    assert text.startswith("Too many wrong codes from this address; try again in ")
    assert "attempt(s) left" not in text
    assert "locked phone" not in [d["name"] for d in rpc(app_daemon, "devices.list")["devices"]]
    assert not any(cookie["name"] == "cauldron_device" for cookie in context.cookies())
    assert code_field.input_value() == good  # kept for when the lockout ends
    problems.check()
    context.close()
