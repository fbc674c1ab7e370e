"""The pair screen over the LAN's HTTPS (a `--lan` daemon bound to 127.0.0.1): the certificate fingerprint it
shows is the SHA-256 of the CA that /pair/ca.pem downloads (computed here with hashlib over the PEM's DER), a
QR link whose fingerprint differs is flagged, and a phone pairs over HTTPS (the Secure cookie is kept there).
The browser context accepts the daemon's certificate as a phone that trusted the CA would."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.process import DaemonProcess, free_port
from tests.pwa.conftest import ACTION_TIMEOUT_MS, DEVICES, assert_accessible, open_page, rpc, screenshot


@pytest.fixture(scope="module")
def lan_app_daemon(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[tuple[DaemonProcess, str]]:
    data_dir = tmp_path_factory.mktemp("pwa-lan") / "data"
    data_dir.mkdir()
    lan_port = free_port()
    settings = {
        "CAULDRON_LAN": "1",
        "CAULDRON_LAN_HOST": "127.0.0.1",  # tests bind loopback only
        "CAULDRON_LAN_PORT": str(lan_port),
        "CAULDRON_INSTANCE_NAME": f"pwa-lan-test-{os.getpid()}",
    }
    process = DaemonProcess(data_dir, models_dir, env=settings)
    process.start()
    try:
        yield process, f"https://127.0.0.1:{lan_port}"
    finally:
        process.stop()


def sha256_of_pem(pem: str) -> str:
    body = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
    return hashlib.sha256(base64.b64decode(body)).hexdigest()


def test_the_lan_pair_screen_shows_the_cas_fingerprint_and_pairs_over_https(
    browser: Any, lan_app_daemon: tuple[DaemonProcess, str]
) -> None:
    daemon, lan_url = lan_app_daemon
    context = browser.new_context(**DEVICES["phone"], base_url=lan_url, ignore_https_errors=True)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    ca = context.request.get("/pair/ca.pem")
    assert ca.ok
    expected = sha256_of_pem(ca.text()).upper()
    created = rpc(daemon, "pairing.create_code")

    # A link with another fingerprint: flagged, "do not pair".
    page, problems = open_page(context, f"/pair?code={created['code']}&fp={'00' * 32}")
    page.get_by_role("alert").filter(has_text="does not match this daemon's certificate").wait_for()
    assert page.get_by_test_id("fingerprint").inner_text().replace(" ", "") == expected  # the daemon's own

    # The link `cauldronctl pair` made: the same fingerprint, no warning.
    page.goto(f"/pair?code={created['code']}&fp={created['fingerprint']}")
    page.get_by_test_id("fingerprint").wait_for()
    assert page.get_by_test_id("fingerprint").inner_text().replace(" ", "") == expected
    assert page.get_by_label("Code", exact=True).input_value() == created["code"]
    assert not page.get_by_role("alert").is_visible()
    assert page.get_by_role("link", name="Download the certificate authority").is_visible()
    screenshot(page, "pair-lan", "phone")
    assert_accessible(page, "pair over the LAN")

    page.get_by_label("Device name").fill("lan phone")
    page.get_by_role("button", name="Pair").click()
    page.get_by_role("navigation", name="Screens").wait_for()
    assert any(c["name"] == "cauldron_device" and c["secure"] for c in context.cookies())
    assert "lan phone" in [d["name"] for d in rpc(daemon, "devices.list")["devices"]]
    problems.check()
    context.close()
