"""Every HTTP route and every RPC method, taken from the running daemon itself, refuses a caller without
credentials; only the app shell, the manifest, the pairing page with its CA download and /healthz are open.
A route or method added later is walked too, so it cannot escape."""

from __future__ import annotations

import re

import aiohttp
from aiohttp import web
from cauldron_client import Client
from cauldron_client.errors import RpcError

from cauldrond.daemon import Daemon
from tests.conftest import url_of
from tests.lan.conftest import lan_url, local_call, trusting_context

# The app's shell (its screens, its files under /app/, its service worker and manifest) holds no data, so a phone
# can show the pair screen and start offline; the walk fills /app/{path} and /experiments/{id} with a sample.
APP_SHELL = {
    "/",
    "/new",
    "/gallery",
    "/experiments",
    "/experiments/1",
    "/signed-out",
    "/app/1",
    "/sw.js",
    "/shell.json",
}
# /login and /session check what they are given themselves (a one-time code; the caller's own cookie).
OPEN = {"/manifest.webmanifest", "/healthz", "/pair", "/pair/ca.pem", "/login", "/session"} | APP_SHELL
# The AUTOMATIC1111-compatible API (cauldrond/a1111/routes.py); the walk covers its catch-all route too.
A1111_ROUTES = {"/sdapi/v1/txt2img", "/sdapi/v1/options", "/sdapi/v1/progress", "/sdapi/v1/png-info"}
LOCAL_ONLY = {"devices.list", "devices.revoke", "pairing.create_code", "pairing.create_login"}
SAMPLES = ["1", "0" * 32, "a", "x.png", "256"]  # 256: a thumbnail size that is also an image id


def concrete_path(resource: web.AbstractResource) -> str:
    """A path the resource matches: each {placeholder} replaced by a sample its pattern accepts."""
    info = resource.get_info()
    if "path" in info:
        return str(info["path"])
    if "formatter" not in info:
        raise AssertionError(f"cannot walk resource {resource!r}")
    pattern = info["pattern"]
    names = re.findall(r"{(\w+)}", info["formatter"])
    for values in ([s] * len(names) for s in SAMPLES):
        path = info["formatter"].format(**dict(zip(names, values, strict=True)))
        if pattern.fullmatch(path):
            return str(path)
    raise AssertionError(f"no sample fits {info['formatter']}")


def walk(daemon: Daemon) -> list[tuple[str, str]]:
    assert daemon.frontend is not None and daemon.frontend.app is not None
    return sorted(
        {
            (route.method, concrete_path(route.resource))
            for route in daemon.frontend.app.router.routes()
            if route.resource
        }
    )


async def test_every_route_refuses_without_credentials_on_both_listeners(lan_daemon: Daemon) -> None:
    routes = walk(lan_daemon)
    assert {path for _, path in routes} >= OPEN | {"/rpc", "/images/1.png"} | A1111_ROUTES
    opened: set[str] = set()
    async with aiohttp.ClientSession() as session:
        for base, ssl in ((url_of(lan_daemon), None), (lan_url(lan_daemon), trusting_context(lan_daemon))):
            for method, path in routes:
                reply = await session.request(method, base + path, ssl=ssl, allow_redirects=False)
                if reply.status != 401:
                    opened.add(path)
                # A cookie that is not a token, a Bearer that is not one: still refused.
                bad = {"Authorization": "Bearer not-a-token", "Cookie": "cauldron_device=nope"}
                reply = await session.request(method, base + path, headers=bad, ssl=ssl, allow_redirects=False)
                assert reply.status == 401 or path in OPEN, (method, path, reply.status)
                if path.startswith("/sdapi/"):
                    # A1111 clients send HTTP Basic (any user, the token as password): a wrong one is refused too.
                    wrong = {"Authorization": aiohttp.encode_basic_auth("user", "not-a-token")}
                    reply = await session.request(method, base + path, headers=wrong, ssl=ssl, allow_redirects=False)
                    assert reply.status == 401, (method, path, reply.status)
    assert opened == OPEN


async def test_every_rpc_method_refuses_without_credentials_and_local_ones_refuse_devices(
    lan_daemon: Daemon,
) -> None:
    names = [m["name"] for m in (await local_call(lan_daemon, "rpc.describe"))["methods"]]
    assert set(names) >= LOCAL_ONLY and "system.info" in names
    code = (await local_call(lan_daemon, "pairing.create_code"))["code"]
    async with aiohttp.ClientSession() as session:
        reply = await session.post(url_of(lan_daemon) + "/pair", json={"code": code, "device_name": "walker"})
        device = (await reply.json())["token"]
        # Credentials are checked at the WebSocket upgrade, before any method can be named: without them, or with
        # a wrong one, no connection opens on either listener, so no method is reachable.
        for base, ssl in ((url_of(lan_daemon), None), (lan_url(lan_daemon), trusting_context(lan_daemon))):
            for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Cookie": "cauldron_device=nope"}):
                try:
                    ws = await session.ws_connect(base + "/rpc", headers=headers, ssl=ssl)
                except aiohttp.WSServerHandshakeError as exc:
                    assert exc.status == 401, (base, headers)
                else:
                    await ws.close()
                    raise AssertionError(f"{base}: an unauthenticated WebSocket was accepted with {headers}")
        async with Client(url_of(lan_daemon), device) as client:
            # Each method by name, over an authenticated connection: it is dispatched to its own parameter check
            # (the error names it), so the names walked above are methods a credential does reach.
            for name in sorted(set(names) - LOCAL_ONLY):
                try:
                    await client.call(name, walk_probe=1)
                except RpcError as exc:
                    assert exc.code == "invalid_params" and exc.message.startswith(f"{name}: "), (name, exc)
                else:
                    raise AssertionError(f"{name} accepted an unknown parameter")
            # With a device token, the owner-only methods answer "forbidden" whatever their params.
            for name in sorted(LOCAL_ONLY):
                params = {"token_id": 1} if name == "devices.revoke" else {}
                try:
                    await client.call(name, **params)
                except RpcError as exc:
                    assert exc.code == "forbidden", name
                else:
                    raise AssertionError(f"{name} answered a device token")
