"""Signing a browser in: one-time links (pairing.create_login, GET /login, cauldronctl open), GET /session in each
state, POST /pair's distinct refusals, and the owner's methods seeing the caller's credential on the RPC context.
Real daemons, real HTTP and WebSockets; cookies are handled by hand so each test says exactly what a browser sends."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest
from cauldron_client import Client
from cauldron_client.cli import cli
from cauldron_client.errors import RpcError
from click.testing import CliRunner, Result

from cauldrond.daemon import Daemon
from tests.conftest import token_of, url_of
from tests.lan.conftest import access_of, lan_url, trusting_context

COOKIE = "cauldron_device"
SESSION_KEYS = {"signed_in", "kind", "device_name", "signed_out", "lan", "fingerprint", "pair_url"}


async def local(daemon: Daemon, method: str, **params: Any) -> Any:
    async with Client(url_of(daemon), token_of(daemon)) as client:
        return await client.call(method, **params)


async def token_rows(daemon: Daemon) -> list[tuple[str, str]]:
    assert daemon.services is not None
    return [(row.name, row.token_hash) for row in await daemon.services.store.tokens.all()]


async def get(
    url: str, *, headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None
) -> tuple[int, dict[str, str], str, list[str]]:
    """One GET, redirects not followed: status, headers, body and every Set-Cookie header."""
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
        session.get(url, headers=headers or {}, allow_redirects=False, ssl=context or False) as response,
    ):
        return (
            response.status,
            dict(response.headers),
            await response.text(),
            response.headers.getall("Set-Cookie", []),
        )


async def post_pair(
    base: str, body: dict[str, Any], context: ssl.SSLContext | None = None
) -> tuple[int, dict[str, str], Any]:
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
        session.post(base + "/pair", json=body, ssl=context or False) as response,
    ):
        return response.status, dict(response.headers), await response.json()


def cookie_value(set_cookies: list[str]) -> str:
    [line] = [c for c in set_cookies if c.startswith(f"{COOKIE}=")]
    return line.split(";")[0].split("=", 1)[1]


async def rpc_with_cookie(base: str, token: str, method: str) -> list[Any]:
    """A call over /rpc authenticated by the cookie alone, from the daemon's own origin (as the app does)."""
    headers = {"Cookie": f"{COOKIE}={token}", "Origin": base}
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
        session.ws_connect(base.replace("http", "ws", 1) + "/rpc", headers=headers) as ws,
    ):
        await ws.send_bytes(msgpack.packb([0, 1, method, [{}]]))
        reply = msgpack.unpackb(await ws.receive_bytes(timeout=30))
        assert reply[0] == 1 and reply[1] == 1
        return [reply[2], reply[3]]


async def cauldronctl(env: dict[str, str], *args: str) -> Result:
    # CliRunner.invoke runs asyncio.run; keep it off the test's own loop.
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env, catch_exceptions=False)


async def test_a_login_link_signs_a_browser_in_once(daemon: Daemon) -> None:
    base = url_of(daemon)
    created = await local(daemon, "pairing.create_login")
    assert created["expires_in_s"] == 60
    match = re.fullmatch(rf"http://127\.0\.0\.1:{daemon.bound_port}/login\?code=([A-Z2-9]{{8}})", created["link"])
    assert match is not None, created["link"]

    status, headers, _, set_cookies = await get(created["link"])
    assert status == 303 and headers["Location"] == "/"
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
    [line] = set_cookies
    attributes = {part.strip().split("=")[0].lower() for part in line.split(";")}
    assert {"httponly", "secure", "samesite", "path", "max-age"} <= attributes and "SameSite=Strict" in line
    token = cookie_value(set_cookies)
    name = f"browser on {socket.gethostname()}"
    assert await token_rows(daemon) == [(name, hashlib.sha256(token.encode()).hexdigest())]

    # The cookie alone opens /rpc; the context carries a device credential, so the owner's methods refuse it.
    error, info = await rpc_with_cookie(base, token, "system.info")
    assert error is None and info["api_version"] == 1
    error, _ = await rpc_with_cookie(base, token, "devices.list")
    assert error["code"] == "forbidden"
    listed = (await local(daemon, "devices.list"))["devices"]
    assert [(d["name"], d["revoked_at"]) for d in listed] == [(name, None)]

    status, headers, page, set_cookies = await get(created["link"])  # the same link again
    assert status == 403 and "already used" in page and set_cookies == []
    assert headers["Content-Type"].startswith("text/html")
    assert len(await token_rows(daemon)) == 1


async def test_wrong_expired_and_foreign_links_create_nothing(daemon: Daemon) -> None:
    base = url_of(daemon)
    status, _, page, set_cookies = await get(f"{base}/login?code=WRONG234")
    assert status == 403 and "not valid" in page and set_cookies == []
    status, _, page, _ = await get(f"{base}/login")  # no code at all
    assert status == 403 and "not valid" in page

    logins = access_of(daemon).logins
    link = (await local(daemon, "pairing.create_login"))["link"]
    now = logins.clock()
    logins.clock = lambda: now + 61  # a minute and a second later
    status, _, page, set_cookies = await get(link)
    assert status == 403 and "expired" in page and set_cookies == []
    assert await token_rows(daemon) == []
    logins.clock = lambda: now

    # A request another site's page made (a hidden <img>, say) is refused before it counts, and leaves a live
    # code live, so no site the owner visits can lock this machine out or spend a link.
    live = (await local(daemon, "pairing.create_login"))["link"]
    for site in ("cross-site", "same-site"):
        status, _, page, set_cookies = await get(live, headers={"Sec-Fetch-Site": site})
        assert status == 403 and "directly" in page and set_cookies == []
    assert access_of(daemon).limiter.attempts_left("127.0.0.1") == 2
    status, _, _, set_cookies = await get(live, headers={"Sec-Fetch-Site": "none"})  # as a browser opens it
    assert status == 303 and cookie_value(set_cookies)
    assert len(await token_rows(daemon)) == 1

    # Three refusals so far; five is the limit: two more wrong ones, then even a fresh, valid link is refused.
    for _ in range(2):
        status, _, _, _ = await get(f"{base}/login?code=WRONG234")
        assert status == 403
    fresh = (await local(daemon, "pairing.create_login"))["link"]
    status, headers, page, set_cookies = await get(fresh)
    assert status == 429 and int(headers["Retry-After"]) > 800 and "try again" in page and set_cookies == []
    # Wrong pairing codes share the lockout.
    status, headers, reply = await post_pair(base, {"code": "ANYCODE2", "device_name": "x"})
    assert status == 429 and reply["error"] == "locked_out" and reply["retry_after_s"] == int(headers["Retry-After"])
    assert len(await token_rows(daemon)) == 1  # only the browser signed in above


async def test_session_reports_each_state_and_nothing_else(daemon: Daemon) -> None:
    base = url_of(daemon)
    blank = {"lan": False, "fingerprint": None, "pair_url": base}

    async def session(headers: dict[str, str] | None = None) -> dict[str, Any]:
        status, response_headers, body, _ = await get(f"{base}/session", headers=headers)
        assert status == 200 and response_headers["Cache-Control"] == "no-store"
        parsed: dict[str, Any] = json.loads(body)
        assert set(parsed) == SESSION_KEYS
        return parsed

    signed_out_state = {"signed_in": False, "kind": None, "device_name": None, "signed_out": False, **blank}
    assert await session() == signed_out_state
    assert await session({"Cookie": f"{COOKIE}=not-a-token-of-this-daemon"}) == signed_out_state
    local_state = {"signed_in": True, "kind": "local", "device_name": None, "signed_out": False, **blank}
    assert await session({"Authorization": f"Bearer {token_of(daemon)}"}) == local_state

    code = (await local(daemon, "pairing.create_code"))["code"]
    status, _, paired = await post_pair(base, {"code": code, "device_name": "kitchen tablet"})
    assert status == 200
    cookie = {"Cookie": f"{COOKIE}={paired['token']}", "Origin": base}
    device_state = {"signed_in": True, "kind": "device", "device_name": "kitchen tablet", "signed_out": False}
    assert await session(cookie) == {**device_state, **blank}

    status, _, _, _ = await get(f"{base}/session", headers={**cookie, "Origin": "http://evil.example"})
    assert status == 403

    await local(daemon, "devices.revoke", token_id=paired["token_id"])
    revoked_state = {"signed_in": False, "kind": None, "device_name": None, "signed_out": True, **blank}
    assert await session(cookie) == revoked_state


async def test_session_and_pair_refusals_over_the_lan(lan_daemon: Daemon) -> None:
    base, context = lan_url(lan_daemon), trusting_context(lan_daemon)
    status, _, body, _ = await get(f"{base}/session", context=context)
    tls = access_of(lan_daemon).tls
    assert status == 200 and tls is not None
    assert json.loads(body) == {
        "signed_in": False,
        "kind": None,
        "device_name": None,
        "signed_out": False,
        "lan": True,
        "fingerprint": tls.fingerprint,
        "pair_url": base,
    }

    pairing = access_of(lan_daemon).pairing
    used = (await local(lan_daemon, "pairing.create_code"))["code"]
    status, _, reply = await post_pair(base, {"code": used, "device_name": "phone"}, context)
    assert status == 200 and reply["name"] == "phone"
    status, _, reply = await post_pair(base, {"code": used.lower(), "device_name": "again"}, context)
    assert status == 403 and reply["error"] == "code_used" and reply["attempts_left"] == 4
    status, _, reply = await post_pair(base, {"code": "WRONG234", "device_name": "x"}, context)
    assert status == 403 and reply["error"] == "code_wrong" and reply["attempts_left"] == 3
    stale = (await local(lan_daemon, "pairing.create_code"))["code"]
    now = pairing.clock()
    pairing.clock = lambda: now + 301
    status, _, reply = await post_pair(base, {"code": stale, "device_name": "late"}, context)
    assert status == 403 and reply["error"] == "code_expired" and "expired" in reply["message"]
    assert [name for name, _ in await token_rows(lan_daemon)] == ["phone"]


async def test_rpc_describe_lists_the_owners_methods(client: Client) -> None:
    names = {method["name"] for method in (await client.call("rpc.describe"))["methods"]}
    wanted = {"devices.list", "devices.revoke", "pairing.create_code", "pairing.create_login"}
    assert wanted | {"backups.create", "images.verify"} <= names


async def test_cauldronctl_open(daemon: Daemon, tmp_path: Path) -> None:
    env = {"CAULDRON_URL": url_of(daemon), "CAULDRON_TOKEN": token_of(daemon)}
    printed = await cauldronctl(env, "open", "--print")
    assert printed.exit_code == 0, printed.output
    link = printed.output.strip()
    assert re.fullmatch(rf"http://127\.0\.0\.1:{daemon.bound_port}/login\?code=[A-Z2-9]{{8}}", link)
    assert (await get(link))[0] == 303
    assert (await get(link))[0] == 403

    # Without --print the link goes to the browser $BROWSER names (here a script that writes it down).
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.py"
    browser.write_text(f"import sys, pathlib\npathlib.Path({str(opened)!r}).write_text(sys.argv[1])\n")
    shown = await cauldronctl({**env, "BROWSER": f"{sys.executable} {browser} %s"}, "open")
    assert shown.exit_code == 0, shown.output
    status, _, _, set_cookies = await get(opened.read_text())
    assert status == 303 and cookie_value(set_cookies)

    rows = await token_rows(daemon)
    elsewhere = await cauldronctl({**env, "CAULDRON_URL": "ws://192.0.2.1:7860/rpc"}, "open", "--print")
    assert elsewhere.exit_code == 1 and "only with the daemon on this machine" in elsewhere.output
    by_name = await cauldronctl(env, "--daemon", "gpubox", "open")
    assert by_name.exit_code == 1 and "without --daemon" in by_name.output
    code = (await local(daemon, "pairing.create_code"))["code"]
    _, _, paired = await post_pair(url_of(daemon), {"code": code, "device_name": "laptop"})
    as_device = await cauldronctl({**env, "CAULDRON_TOKEN": paired["token"]}, "open", "--print")
    assert as_device.exit_code == 1 and "needs the daemon's local token" in as_device.output
    assert len(await token_rows(daemon)) == len(rows) + 1  # the laptop; no sign-in was made for it


async def test_a_device_token_cannot_use_the_owners_methods(daemon: Daemon) -> None:
    code = (await local(daemon, "pairing.create_code"))["code"]
    _, _, paired = await post_pair(url_of(daemon), {"code": code, "device_name": "phone"})
    async with Client(url_of(daemon), paired["token"]) as device:
        for method in ("devices.list", "pairing.create_login"):
            with pytest.raises(RpcError) as refused:
                await device.call(method)
            assert refused.value.code == "forbidden"
        assert (await device.call("system.info"))["api_version"] == 1
    assert (await local(daemon, "devices.list"))["devices"][0]["name"] == "phone"  # the local token may
