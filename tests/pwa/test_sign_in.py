"""`cauldronctl open`'s one-time link in Chromium: opening it lands in the app signed in (the Secure, HttpOnly,
SameSite=Strict cookie is kept over http://127.0.0.1), /session says so, the cookie opens /rpc, and the link
works once."""

from __future__ import annotations

import socket
from typing import Any

from tests.daemon.process import DaemonProcess
from tests.pwa.conftest import ACTION_TIMEOUT_MS, rpc

OPEN_RPC = """() => new Promise(resolve => {
    const ws = new WebSocket(location.origin.replace('http', 'ws') + '/rpc');
    ws.onopen = () => { ws.close(); resolve('open'); };
    ws.onclose = event => resolve('closed ' + event.code);
})"""


def test_a_login_link_signs_chromium_in_once(browser: Any, app_daemon: DaemonProcess) -> None:
    link = rpc(app_daemon, "pairing.create_login")["link"]
    assert link.startswith(app_daemon.url + "/login?code=")
    context = browser.new_context(base_url=app_daemon.url)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = context.new_page()
    page.goto(link)
    assert page.url == app_daemon.url + "/"  # the 303 to the app

    [cookie] = [c for c in context.cookies() if c["name"] == "cauldron_device"]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert cookie["domain"] == "127.0.0.1"
    assert page.evaluate("document.cookie") == ""  # HttpOnly: the app's scripts never see the token

    session = page.evaluate("() => fetch('/session').then(response => response.json())")
    assert session == {
        "signed_in": True,
        "kind": "device",
        "device_name": f"browser on {socket.gethostname()}",
        "signed_out": False,
        "lan": False,
        "fingerprint": None,
        "pair_url": app_daemon.url,
    }
    assert page.evaluate(OPEN_RPC) == "open"

    again = context.new_page()
    response = again.goto(link)
    assert response is not None and response.status == 403
    assert "already used" in again.text_content("body")
    devices = rpc(app_daemon, "devices.list")["devices"]
    assert [d["name"] for d in devices if d["name"].startswith("browser on ")] == [session["device_name"]]
    context.close()
