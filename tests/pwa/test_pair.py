"""The pair and signed-out screens in a real browser against a real daemon: a fresh phone pairs through the screen
with a code the daemon minted, a QR link fills the code in, wrong and used codes are refused with the daemon's
message (and pair nothing), and a revoked device is told it was signed out while the page is open and after a
reload. At most 4 wrong codes in this module: 5 would lock 127.0.0.1 out of pairing for 15 minutes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.daemon.process import DaemonProcess
from tests.pwa.conftest import (
    ACTION_TIMEOUT_MS,
    DEVICES,
    assert_accessible,
    has_visible_focus,
    open_page,
    pair_context,
    rpc,
    screenshot,
    tab_until,
)
from tests.pwa.service_worker_helpers import poll


def fresh_context(browser: Any, daemon: DaemonProcess, device: str) -> Any:
    context = browser.new_context(**DEVICES[device], base_url=daemon.url)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    return context


def device_names(daemon: DaemonProcess) -> list[str]:
    return [device["name"] for device in rpc(daemon, "devices.list")["devices"]]


def test_a_fresh_phone_pairs_through_the_screen_and_opens_signed_in(browser: Any, app_daemon: DaemonProcess) -> None:
    context = fresh_context(browser, app_daemon, "phone")
    page, problems = open_page(context, "/")
    page.get_by_role("heading", name="Pair this device").wait_for()
    assert not page.get_by_role("navigation", name="Screens").is_visible()  # nothing of the app before pairing
    screenshot(page, "pair", "phone")
    assert_accessible(page, "pair")
    tab_until(page, "#pair-code")
    assert has_visible_focus(page)

    # A wrong code: the daemon's own message at the field, and no device was paired.
    page.get_by_label("Code", exact=True).fill("ZZZZ2222")
    page.get_by_label("Device name").fill("couch phone")
    page.get_by_role("button", name="Pair").click()
    error = page.locator("#pair-error")
    error.wait_for()
    assert error.get_attribute("data-error") == "code_wrong"
    assert "not a pairing code of this daemon" in error.inner_text()
    assert "attempt(s) left" in error.inner_text()
    assert "couch phone" not in device_names(app_daemon)
    assert page.get_by_label("Device name").input_value() == "couch phone"  # what the user typed is kept

    code = rpc(app_daemon, "pairing.create_code")["code"]
    page.get_by_label("Code", exact=True).fill(code.lower())  # typed in lower case: the daemon's codes are upper case
    page.get_by_role("button", name="Pair").click()
    page.get_by_role("navigation", name="Screens").wait_for()
    assert page.url.rstrip("/") == app_daemon.url
    assert page.get_by_role("button", name="Notify me when experiments finish").is_visible()
    screenshot(page, "paired", "phone")
    assert any(cookie["name"] == "cauldron_device" for cookie in context.cookies())
    assert device_names(app_daemon).count("couch phone") == 1
    problems.check()
    context.close()

    # The same code again, on another phone: used, refused, and still one "couch phone".
    other = fresh_context(browser, app_daemon, "tablet")
    page, problems = open_page(other, f"/pair?code={code}")
    assert page.get_by_label("Code", exact=True).input_value() == code
    screenshot(page, "pair", "tablet")
    page.get_by_label("Device name").fill("second tablet")
    page.get_by_role("button", name="Pair").click()
    error = page.locator("#pair-error")
    error.wait_for()
    assert error.get_attribute("data-error") == "code_used"
    assert "already used" in error.inner_text()
    assert "second tablet" not in device_names(app_daemon)
    assert not any(cookie["name"] == "cauldron_device" for cookie in other.cookies())
    problems.check()
    other.close()


def test_a_qr_link_fills_in_the_code_and_shows_its_fingerprint(browser: Any, app_daemon: DaemonProcess) -> None:
    # The link `cauldronctl pair` encodes: /pair?code=...&fp=... (a loopback daemon has no certificate, so the
    # fingerprint shown comes from the link).
    fingerprint = "AB" * 32
    context = fresh_context(browser, app_daemon, "phone")
    # GET /pair serves the app (whose router shows the pair screen) under the app's CSP, not the plain form.
    served = context.request.get(f"/pair?code=ABCD2345&fp={fingerprint}")
    assert served.ok and '<script type="module" src="/app/js/main.js">' in served.text()
    assert "script-src 'self'" in served.headers["content-security-policy"]
    page, problems = open_page(context, f"/pair?code=abcd-2345&fp={fingerprint}")
    assert page.get_by_label("Code", exact=True).input_value() == "ABCD2345"
    shown = page.get_by_test_id("fingerprint").inner_text()
    assert shown.replace(" ", "") == fingerprint
    assert page.get_by_role("link", name="Download the certificate authority").get_attribute("href") == "/pair/ca.pem"
    for platform in ("iPhone and iPad (Safari)", "Android (Chrome)", "Desktop browser"):
        assert page.get_by_text(platform).is_visible()
    page.get_by_text("Android (Chrome)").click()  # the steps open by touch, no hover
    assert page.get_by_text("Install a certificate").is_visible()
    screenshot(page, "pair-link", "phone")
    page.emulate_media(color_scheme="dark")
    assert_accessible(page, "pair from a QR link (dark theme)")
    screenshot(page, "pair-link-dark", "phone")
    problems.check()
    context.close()


@pytest.mark.parametrize("device", ["phone", "tablet"])
def test_a_revoked_device_is_signed_out_while_open_and_after_a_reload_and_can_pair_again(
    browser: Any, app_daemon: DaemonProcess, device: str
) -> None:
    name = f"revoked {device}"
    context = pair_context(browser, app_daemon, device, name=name)
    page, problems = open_page(context, "/")
    page.get_by_role("navigation", name="Screens").wait_for()
    token_id = next(d["id"] for d in rpc(app_daemon, "devices.list")["devices"] if d["name"] == name)

    answer = rpc(app_daemon, "devices.revoke", {"token_id": token_id})
    assert answer["revoked"] is True
    page.get_by_role("heading", name="This device was signed out").wait_for()
    assert not page.get_by_role("navigation", name="Screens").is_visible()
    pair_again = page.get_by_role("link", name="Pair this device again")
    assert pair_again.get_attribute("href") == "/pair"

    if device == "tablet":
        page.reload()
        page.get_by_role("heading", name="This device was signed out").wait_for()
        screenshot(page, "signed-out", device)
    else:
        screenshot(page, "signed-out", device)
        assert_accessible(page, "signed-out")
        # Pairing again without a reload: the app must open a new connection with the new pairing.
        pair_again.click()
        page.get_by_role("heading", name="Pair this device").wait_for()
        page.get_by_label("Code", exact=True).fill(rpc(app_daemon, "pairing.create_code")["code"])
        page.get_by_label("Device name").fill(f"{name} again")
        page.get_by_role("button", name="Pair").click()
        page.get_by_role("navigation", name="Screens").wait_for()

        def connections_of_new_pairing() -> int:
            devices = rpc(app_daemon, "devices.list")["devices"]
            return sum(d["connections"] for d in devices if d["name"] == f"{name} again" and not d["revoked_at"])

        assert poll(connections_of_new_pairing, "the app connected with its new pairing") == 1
    problems.check()
    context.close()
