"""Helpers for the abuse tests (issue 9): raw WebSocket clients that misbehave, and the liveness check every
test ends with: another connection is answered within a second."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import msgpack
from cauldron_client import Client
from websockets.asyncio.client import ClientConnection, connect

from cauldrond.daemon import Daemon
from cauldrond.rpc.limits import RpcLimits
from cauldrond.web.app import RPC_LIMITS
from tests.conftest import token_of, url_of

# The one timeout these tests allow: a liveness bound, not a performance figure.
LIVENESS_S = 1.0


def ws_url(daemon: Daemon) -> str:
    return f"ws://127.0.0.1:{daemon.bound_port}/rpc"


def limits_of(daemon: Daemon) -> RpcLimits:
    assert daemon.frontend is not None and daemon.frontend.app is not None
    return daemon.frontend.app[RPC_LIMITS]


def raw_connect(daemon: Daemon, token: str | None = None, **options: Any) -> Any:
    headers = {"Authorization": f"Bearer {token or token_of(daemon)}"}
    return connect(ws_url(daemon), additional_headers=headers, max_size=None, **options)


def request(msgid: int, method: str, **params: Any) -> bytes:
    packed: bytes = msgpack.packb([0, msgid, method, [params]])
    return packed


async def replies(ws: ClientConnection, count: int, timeout: float = 60.0) -> list[list[Any]]:
    async def read() -> list[list[Any]]:
        got = []
        for _ in range(count):
            frame = await ws.recv()
            assert isinstance(frame, bytes)
            got.append(msgpack.unpackb(frame))
        return got

    return await asyncio.wait_for(read(), timeout)


async def assert_alive(daemon: Daemon) -> dict[str, Any]:
    """A new connection gets system.info within a second."""
    async with Client(url_of(daemon), token_of(daemon)) as other:
        info: dict[str, Any] = await asyncio.wait_for(other.call("system.info"), LIVENESS_S)
    assert info["api_version"] == 1
    return info


def comfyui_bombs() -> Any:
    """The hostile ComfyUI files the plugin's own tests use (plugins/cauldron-comfyui/tests/comfyui_bombs.py)."""
    path = Path(__file__).resolve().parents[2] / "plugins" / "cauldron-comfyui" / "tests" / "comfyui_bombs.py"
    spec = importlib.util.spec_from_file_location("comfyui_bombs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
