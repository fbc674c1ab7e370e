"""Pairing over the real HTTPS listener: success, expiry, reuse, lockout, revoke closing a live connection."""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client
from cauldron_client.errors import ConnectionFailed, RpcError, Unauthorized
from cauldron_client.known_hosts import KnownDaemons, PinnedClient, pair_with_daemon

from cauldrond.daemon import Daemon
from cauldrond.web.auth import hash_token
from tests.conftest import token_of, url_of
from tests.lan.conftest import access_of, lan_url, local_call, trusting_context


def post_pair(daemon: Daemon, body: dict[str, Any], context: ssl.SSLContext) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        lan_url(daemon) + "/pair",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {"text": exc.read().decode()}


async def test_pairing_gives_a_working_device_token_stored_only_as_a_hash(lan_daemon: Daemon, tmp_path: Path) -> None:
    created = await local_call(lan_daemon, "pairing.create_code")
    assert len(created["code"]) == 8 and created["expires_in_s"] == 300
    assert created["fingerprint"] == access_of(lan_daemon).tls.fingerprint  # type: ignore[union-attr]
    assert created["code"] in created["link"] and created["fingerprint"] in created["link"]
    assert "\u2580" in created["qr"] or "\u2588" in created["qr"]  # a QR drawn with block characters

    known = KnownDaemons(tmp_path / "known.json")
    entry = await asyncio.to_thread(
        pair_with_daemon,
        lan_url(lan_daemon),
        created["code"],
        "laptop",
        expected_fingerprint=created["fingerprint"],
        known=known,
    )
    assert (tmp_path / "known.json").stat().st_mode & 0o777 == 0o600
    assert len(entry.token) >= 43  # 256 bits, urlsafe base64
    rows = await lan_daemon.services.store.tokens.all()  # type: ignore[union-attr]
    assert [(r.name, r.token_hash) for r in rows] == [("laptop", hash_token(entry.token))]
    for db_file in lan_daemon.settings.data_dir.glob("cauldron.sqlite3*"):  # the database and its WAL
        assert entry.token.encode() not in db_file.read_bytes()

    async with PinnedClient(KnownDaemons(tmp_path / "known.json").all()[0]) as device:
        info = await device.call("system.info")
        assert info["api_version"] == 1
        with pytest.raises(RpcError) as refused:  # a device cannot manage devices or mint codes
            await device.call("pairing.create_code")
        assert refused.value.code == "forbidden"
    listed = (await local_call(lan_daemon, "devices.list"))["devices"]
    assert listed[0]["name"] == "laptop" and listed[0]["last_used_at"] is not None
    assert "token" not in json.dumps(listed).replace("token_id", "")


async def test_expired_and_reused_codes_are_refused(lan_daemon: Daemon) -> None:
    context = trusting_context(lan_daemon)
    pairing = access_of(lan_daemon).pairing
    code = (await local_call(lan_daemon, "pairing.create_code"))["code"]
    now = pairing.clock()
    pairing.clock = lambda: now + 301  # five minutes and a second later
    status, _ = await asyncio.to_thread(post_pair, lan_daemon, {"code": code, "device_name": "late"}, context)
    assert status == 403

    pairing.clock = lambda: now
    code = (await local_call(lan_daemon, "pairing.create_code"))["code"]
    status, reply = await asyncio.to_thread(post_pair, lan_daemon, {"code": code, "device_name": "phone"}, context)
    assert status == 200 and reply["name"] == "phone"
    status, _ = await asyncio.to_thread(post_pair, lan_daemon, {"code": code, "device_name": "again"}, context)
    assert status == 403
    names = [r.name for r in await lan_daemon.services.store.tokens.all()]  # type: ignore[union-attr]
    assert names == ["phone"]


async def test_guessing_locks_the_address_out_even_for_the_right_code(lan_daemon: Daemon) -> None:
    context = trusting_context(lan_daemon)
    code = (await local_call(lan_daemon, "pairing.create_code"))["code"]
    for guess in range(5):
        status, _ = await asyncio.to_thread(
            post_pair, lan_daemon, {"code": f"WRONG{guess:03d}", "device_name": "x"}, context
        )
        assert status == 403
    status, reply = await asyncio.to_thread(post_pair, lan_daemon, {"code": code, "device_name": "x"}, context)
    assert status == 429 and "try again" in reply["text"]
    limiter = access_of(lan_daemon).limiter
    later = limiter.clock() + 901
    limiter.clock = lambda: later  # after the 15-minute lockout the right code works again
    status, _ = await asyncio.to_thread(post_pair, lan_daemon, {"code": code, "device_name": "x"}, context)
    assert status == 200


async def test_browser_pairing_sets_a_strict_cookie(lan_daemon: Daemon) -> None:
    code = (await local_call(lan_daemon, "pairing.create_code"))["code"]
    context = trusting_context(lan_daemon)

    def submit() -> str:
        request = urllib.request.Request(
            lan_url(lan_daemon) + "/pair",
            data=f"code={code}&device_name=phone".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": lan_url(lan_daemon)},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return str(response.headers["Set-Cookie"])

    cookie = await asyncio.to_thread(submit)
    parts = {p.strip().split("=")[0].lower() for p in cookie.split(";")}
    assert {"httponly", "secure", "samesite"} <= parts and "SameSite=Strict" in cookie


async def test_revoking_a_device_closes_its_open_connection_at_once(lan_daemon: Daemon, tmp_path: Path) -> None:
    code = (await local_call(lan_daemon, "pairing.create_code"))["code"]
    known = KnownDaemons(tmp_path / "known.json")
    entry = await asyncio.to_thread(pair_with_daemon, lan_url(lan_daemon), code, "tablet", known=known)
    async with PinnedClient(entry) as device, Client(url_of(lan_daemon), token_of(lan_daemon)) as owner:
        await device.call("system.info")
        result = await owner.call("devices.revoke", token_id=entry.token_id)
        assert result == {"token_id": entry.token_id, "revoked": True, "closed_connections": 1}
        with pytest.raises(ConnectionFailed):
            async with asyncio.timeout(2):
                await device.call("system.info")
    with pytest.raises(Unauthorized):
        async with PinnedClient(entry):
            pass
