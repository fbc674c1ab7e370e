"""Host and Origin checks on the loopback listener (plain HTTP, so the cookie header is sent directly:
browsers drop Secure cookies on http:// pages other than localhost)."""

from __future__ import annotations

import aiohttp
import pytest

from cauldrond.daemon import Daemon
from cauldrond.web.auth import COOKIE_NAME
from tests.conftest import token_of, url_of
from tests.lan.conftest import access_of, local_call


async def device_token(daemon: Daemon) -> str:
    code = (await local_call(daemon, "pairing.create_code"))["code"]
    async with aiohttp.ClientSession() as session:
        reply = await session.post(url_of(daemon) + "/pair", json={"code": code, "device_name": "browser"})
        assert reply.status == 200
        return str((await reply.json())["token"])


async def ws_status(daemon: Daemon, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(url_of(daemon) + "/rpc", headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await ws.close()
        return 101


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:7860", "127.0.0.1.evil.example", "10.255.255.1", "[::2]", ""]
)
async def test_foreign_host_is_refused_everywhere(daemon: Daemon, host: str) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/healthz", "/", "/pair", "/rpc"):
            headers = {"Host": host, "Authorization": f"Bearer {token_of(daemon)}"}
            reply = await session.get(url_of(daemon) + path, headers=headers)
            assert reply.status == 421, (host, path)


async def test_own_names_are_served(daemon: Daemon) -> None:
    hostname = access_of(daemon).hosts.hostname
    async with aiohttp.ClientSession() as session:
        for host in ("127.0.0.1", "localhost", "LOCALHOST.", f"{hostname}.local", "[::1]:1234"):
            reply = await session.get(url_of(daemon) + "/healthz", headers={"Host": host})
            assert reply.status == 200, host


async def test_cookie_websocket_needs_the_daemons_own_origin(daemon: Daemon) -> None:
    token = await device_token(daemon)
    cookie = {"Cookie": f"{COOKIE_NAME}={token}"}
    own = url_of(daemon)
    assert await ws_status(daemon, {**cookie, "Origin": own}) == 101
    assert await ws_status(daemon, {**cookie, "Origin": own.replace("127.0.0.1", "localhost")}) == 403
    assert await ws_status(daemon, {**cookie, "Origin": "https://evil.example"}) == 403
    assert await ws_status(daemon, {**cookie, "Origin": "null"}) == 403
    assert await ws_status(daemon, cookie) == 403  # missing Origin
    assert await ws_status(daemon, {**cookie, "Origin": own + ":1"}) == 403  # malformed
    # The CLI: a Bearer token needs no Origin; a wrong cookie is no credential at all.
    assert await ws_status(daemon, {"Authorization": f"Bearer {token}"}) == 101
    assert await ws_status(daemon, {"Cookie": f"{COOKIE_NAME}=nope", "Origin": own}) == 401


async def test_cookie_image_get_works_from_an_img_tag_but_not_cross_origin(daemon: Daemon) -> None:
    token = await device_token(daemon)
    async with aiohttp.ClientSession() as session:
        url = url_of(daemon) + "/images/999.png"
        cookie = {"Cookie": f"{COOKIE_NAME}={token}"}
        assert (await session.get(url, headers=cookie)).status == 404  # authenticated; no such image
        foreign = {**cookie, "Origin": "https://evil.example"}
        assert (await session.get(url, headers=foreign)).status == 403
        assert (await session.get(url)).status == 401


async def test_cross_origin_pairing_form_is_refused(daemon: Daemon) -> None:
    code = (await local_call(daemon, "pairing.create_code"))["code"]
    async with aiohttp.ClientSession() as session:
        reply = await session.post(
            url_of(daemon) + "/pair",
            data={"code": code, "device_name": "x"},
            headers={"Origin": "https://evil.example"},
        )
        assert reply.status == 403
        reply = await session.post(url_of(daemon) + "/pair", json={"code": code, "device_name": "x"})
        assert reply.status == 200  # the code was not spent by the refused request
