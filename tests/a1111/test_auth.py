"""Who reaches the A1111 API: HTTP Basic with any user name and a token as the password, or Bearer; never the
cookie; on loopback by default, on the LAN listener only with a1111_api_lan, nowhere with a1111_api = "off".
(Every route refusing a caller without credentials is in tests/lan/test_route_walk.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cauldrond.config import ConfigError, load_settings
from cauldrond.daemon import Daemon
from tests.conftest import make_settings, token_of, url_of
from tests.lan.conftest import lan_url, local_call, trusting_context

OPTIONS = "/sdapi/v1/options"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(user, password)}


async def start(tmp_path: Path, models_dir: Path, **overrides: Any) -> Daemon:
    daemon = Daemon(make_settings(tmp_path / "data", models_dir, **overrides))
    await daemon.start()
    return daemon


@pytest.fixture
async def lan_closed(tmp_path: Path, models_dir: Path) -> AsyncIterator[Daemon]:
    daemon = await start(tmp_path, models_dir, lan=True, lan_host="127.0.0.1", lan_port=0, instance_name="a1111-a")
    try:
        yield daemon
    finally:
        await daemon.stop()


async def status(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with session.get(url, **kwargs) as reply:
        body = await reply.json(content_type=None)
        return reply.status, (body, reply.headers.get("WWW-Authenticate"))


async def pair_device(daemon: Daemon, session: aiohttp.ClientSession) -> tuple[str, int]:
    code = (await local_call(daemon, "pairing.create_code"))["code"]
    async with session.post(url_of(daemon) + "/pair", json={"code": code, "device_name": "bot"}) as reply:
        token = (await reply.json())["token"]
    devices = (await local_call(daemon, "devices.list"))["devices"]
    return token, next(d["id"] for d in devices if d["name"] == "bot")


async def test_basic_bearer_and_device_tokens_on_loopback_never_the_cookie(lan_closed: Daemon) -> None:
    base = url_of(lan_closed) + OPTIONS
    token = token_of(lan_closed)
    async with aiohttp.ClientSession() as session:
        assert (await status(session, base, headers=basic("any-name", token)))[0] == 200
        assert (await status(session, base, headers=basic("", token)))[0] == 200
        assert (await status(session, base, headers={"Authorization": f"Bearer {token}"}))[0] == 200
        code, (body, challenge) = await status(session, base)
        assert code == 401 and challenge.startswith("Basic") and set(body) == {"error", "detail", "body", "errors"}
        for refused in (
            {"headers": basic("user", token + "x")},
            {"headers": basic(token, "")},  # the token as the user name is not the password
            {"headers": {"Authorization": "Basic !!!not-base64"}},
            {"headers": {"Cookie": f"cauldron_device={token}"}},
        ):
            assert (await status(session, base, **refused))[0] == 401, refused
        device, device_id = await pair_device(lan_closed, session)
        assert (await status(session, base, headers=basic("bot", device)))[0] == 200
        # A device sees no absolute path of the daemon's (as over RPC); the owner sees them as they are.
        models_dir = str(lan_closed.settings.resolved_models_dir)
        for path in ("sd-models", "cmd-flags"):
            url = url_of(lan_closed) + "/sdapi/v1/" + path
            async with session.get(url, headers=basic("bot", device)) as reply:
                text = await reply.text()
                assert reply.status == 200 and "<models_dir>" in text
                assert models_dir not in text and str(lan_closed.settings.data_dir) not in text
            async with session.get(url, headers=basic("me", token)) as reply:
                assert models_dir in await reply.text()
        await local_call(lan_closed, "devices.revoke", token_id=device_id)
        assert (await status(session, base, headers=basic("bot", device)))[0] == 401


async def test_off_on_the_lan_unless_enabled(lan_closed: Daemon, tmp_path: Path, models_dir: Path) -> None:
    token = token_of(lan_closed)
    async with aiohttp.ClientSession() as session:
        ssl = trusting_context(lan_closed)
        lan = lan_url(lan_closed) + OPTIONS
        assert (await status(session, lan, ssl=ssl))[0] == 401  # credentials first: nothing told to a stranger
        code, (body, _) = await status(session, lan, ssl=ssl, headers=basic("u", token))
        assert code == 404 and "a1111_api_lan" in body["detail"]
        assert (await status(session, url_of(lan_closed) + OPTIONS, headers=basic("u", token)))[0] == 200
    opened = await start(
        tmp_path / "open", models_dir, lan=True, lan_host="127.0.0.1", lan_port=0, a1111_api_lan=True,
        instance_name="a1111-b",
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:
            auth = basic("u", token_of(opened))
            code, _ = await status(session, lan_url(opened) + OPTIONS, ssl=trusting_context(opened), headers=auth)
            assert code == 200
    finally:
        await opened.stop()


async def test_off_everywhere(tmp_path: Path, models_dir: Path) -> None:
    daemon = await start(tmp_path, models_dir, a1111_api="off")
    try:
        async with aiohttp.ClientSession() as session:
            assert (await status(session, url_of(daemon) + OPTIONS))[0] == 401
            auth = basic("u", token_of(daemon))
            code, (body, _) = await status(session, url_of(daemon) + OPTIONS, headers=auth)
            assert code == 404 and "a1111_api = off" in body["detail"]
            async with session.get(url_of(daemon) + "/healthz") as reply:
                assert reply.status == 200  # the rest of the daemon is unaffected
    finally:
        await daemon.stop()


def test_settings_are_validated(tmp_path: Path) -> None:
    settings = load_settings(environ={"CAULDRON_A1111_API": "off", "CAULDRON_A1111_API_LAN": "yes"})
    assert settings.a1111_api == "off" and settings.a1111_api_lan is True
    assert load_settings(environ={}).a1111_api == "auto"
    with pytest.raises(ConfigError, match="a1111_api"):
        load_settings(environ={"CAULDRON_A1111_API": "lan"})
    with pytest.raises(ConfigError, match="a1111_api_lan"):
        load_settings(environ={"CAULDRON_A1111_API_LAN": "sometimes"})
