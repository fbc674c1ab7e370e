"""Hostile and broken input: each gets an error reply or a close code, the daemon and other connections carry
on, and nothing already queued is touched."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest
from cauldron_client import Client
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from cauldrond.daemon import Daemon
from tests.conftest import FAST, token_of, url_of


def ws_url(daemon: Daemon) -> str:
    return f"ws://127.0.0.1:{daemon.bound_port}/rpc"


@pytest.fixture
async def raw(daemon: Daemon) -> AsyncIterator[ClientConnection]:
    headers = {"Authorization": f"Bearer {token_of(daemon)}"}
    async with connect(ws_url(daemon), additional_headers=headers, max_size=None) as ws:
        yield ws


@pytest.fixture
async def queued_state(client: Client) -> dict[str, Any]:
    """A paused queue holding an experiment, so 'nothing queued is touched' can be checked."""
    await client.call("queue.pause")
    await client.call("experiments.create", name="keep", base=FAST, axes={"seed": [1, 2, 3]})
    state: dict[str, Any] = await client.call("queue.list")
    return state


async def reply(ws: ClientConnection) -> list[Any]:
    frame = await asyncio.wait_for(ws.recv(), 10)
    assert isinstance(frame, bytes)
    message: list[Any] = msgpack.unpackb(frame)
    return message


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\xc1\xc1\xc1", "invalid_request"),
        (msgpack.packb({"a": 1}), "invalid_request"),
        (msgpack.packb([0, 1, "no.such_method", []]), "method_not_found"),
        (msgpack.packb([0, 1, "experiments.get", [{"experiment_id": "one"}]]), "invalid_params"),
        (msgpack.packb([0, 1, "experiments.get", [{"experiment_id": 1, "extra": True}]]), "invalid_params"),
        (msgpack.packb([0, 1, "generate", [{"prompt": 5}]]), "invalid_params"),
        (msgpack.packb([0, 1, "generate", [{"prompt": "x" * 70_000}]]), "too_large"),
        (msgpack.packb([0, 1, "generate", [{"prompt": "p", "tags": list(range(20_000))}]]), "too_large"),
    ],
)
async def test_bad_requests_get_error_replies(
    raw: ClientConnection, client: Client, queued_state: dict[str, Any], frame: bytes, code: str
) -> None:
    await raw.send(frame)
    kind, _, error, result = await reply(raw)
    assert kind == 1 and result is None
    assert error["code"] == code and error["message"]
    # The same connection still works, and the queue is as it was.
    await raw.send(msgpack.packb([0, 2, "queue.list", []]))
    assert (await reply(raw))[3] == queued_state
    assert await client.call("queue.list") == queued_state


async def test_text_frames_are_refused(raw: ClientConnection) -> None:
    await raw.send("hello")
    assert (await reply(raw))[2]["code"] == "invalid_request"


async def test_an_oversized_frame_closes_only_that_connection(
    raw: ClientConnection, client: Client, queued_state: dict[str, Any]
) -> None:
    await raw.send(msgpack.packb([0, 1, "generate", [{"prompt": "x" * (2 * 1024 * 1024)}]]))
    with pytest.raises(ConnectionClosed) as caught:
        await asyncio.wait_for(raw.recv(), 10)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1009
    assert await client.call("queue.list") == queued_state


async def test_a_flood_is_rate_limited_not_fatal(
    raw: ClientConnection, client: Client, queued_state: dict[str, Any]
) -> None:
    burst = 300  # bounded
    for msgid in range(burst):
        await raw.send(msgpack.packb([0, msgid, "system.info", []]))
    codes = []
    for _ in range(burst):
        _, _, error, _ = await reply(raw)
        codes.append(error["code"] if error else "ok")
    assert codes.count("ok") >= 64
    assert set(codes) <= {"ok", "rate_limited"}
    assert await client.call("queue.list") == queued_state


async def test_a_client_that_never_reads_does_not_stall_others(daemon: Daemon, client: Client) -> None:
    headers = {"Authorization": f"Bearer {token_of(daemon)}"}
    async with connect(ws_url(daemon), additional_headers=headers, max_queue=1) as lazy:
        await lazy.send(msgpack.packb([0, 1, "events.subscribe", []]))
        for msgid in range(2, 40):
            await lazy.send(msgpack.packb([0, msgid, "rpc.describe", []]))
        # Meanwhile another client is served promptly.
        for _ in range(5):
            assert (await asyncio.wait_for(client.call("system.info"), 5))["api_version"] == 1


def http_get(url: str, token: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize(
    "path",
    [
        "/images/999.png",
        "/images/../cauldron.sqlite3",
        "/images/%2e%2e/cauldron.sqlite3",
        "/images/%2e%2e%2ftoken",
        "/images/..%2f..%2ftoken.png",
        "/images/1.png/../../token",
        "/images/-1.png",
        "/images/abc.png",
        "/images/99999999999999999999999.png",
    ],
)
async def test_image_route_refuses_unknown_ids_and_traversal(
    daemon: Daemon, client: Client, queued_state: dict[str, Any], path: str
) -> None:
    status, body = await asyncio.to_thread(http_get, url_of(daemon) + path, token_of(daemon))
    assert status == 404
    assert token_of(daemon).encode() not in body and b"SQLite" not in body
    assert (await client.call("system.info"))["api_version"] == 1
    assert await client.call("queue.list") == queued_state


async def test_auth_is_required_at_the_upgrade_and_for_images(daemon: Daemon, client: Client) -> None:
    created = await client.call("generate", **FAST, seed=3)
    # The token is checked at the WebSocket upgrade, before any message: without the connection no method can be
    # named, so one try per token covers them all (tests/lan/test_route_walk.py calls each method by name).
    for token in (None, "wrong", token_of(daemon) + "x", token_of(daemon)[:-1]):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with pytest.raises(InvalidStatus) as caught:
            async with connect(ws_url(daemon), additional_headers=headers) as ws:
                await ws.send(msgpack.packb([0, 1, "queue.pause", []]))
                await ws.recv()
        assert caught.value.response.status_code == 401, token
        status, _ = await asyncio.to_thread(http_get, url_of(daemon) + "/images/1.png", token)
        assert status == 401
    # Nothing the refused requests asked for happened: the queue was not paused, the experiment is unchanged.
    assert (await client.call("queue.list"))["paused"] is False
    got = await client.call("experiments.get", experiment_id=created["experiment"]["id"])
    assert got["experiment"]["counts"]["total"] == 1


async def test_healthz_is_open_and_reports_readiness(daemon: Daemon) -> None:
    status, body = await asyncio.to_thread(http_get, url_of(daemon) + "/healthz", None)
    assert status == 200
    assert b'"ok": true' in body and b'"engine": true' in body
