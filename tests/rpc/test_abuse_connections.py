"""Abuse item 7 (issue 9): many connections flooding requests they do not read cannot starve another client:
work in flight is bounded across connections and served first come first served (one waiting request per
connection), and connections over max_connections are refused with 503."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cauldron_client import Client
from websockets.exceptions import InvalidStatus

from cauldrond.daemon import Daemon
from tests.conftest import FAST, make_settings
from tests.rpc.abuse import assert_alive, limits_of, raw_connect, replies, request
from tests.waiting import until

FLOODERS = 50
PER_CONNECTION = 64  # the per-connection limit: every request is accepted, none rate_limited
IN_FLIGHT = 16
MAX_CONNECTIONS = FLOODERS + 3


@pytest.fixture
async def tight_daemon(tmp_path: Path, models_dir: Path) -> AsyncIterator[Daemon]:
    settings = make_settings(
        tmp_path / "data", models_dir, max_rpc_in_flight=IN_FLIGHT, max_connections=MAX_CONNECTIONS
    )
    running = Daemon(settings)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def test_fifty_flooding_connections_do_not_starve_another(tight_daemon: Daemon) -> None:
    daemon = tight_daemon
    async with Client(f"http://127.0.0.1:{daemon.bound_port}", daemon.services.token) as client:  # type: ignore[union-attr]
        await client.call("queue.pause")
        await client.call("experiments.create", name="keep", base=FAST, axes={"seed": [1, 2]})
        before = await client.call("queue.list")
    async with contextlib.AsyncExitStack() as stack:
        flooders = [await stack.enter_async_context(raw_connect(daemon, max_queue=1)) for _ in range(FLOODERS)]
        for ws in flooders:
            for msgid in range(PER_CONNECTION):
                await ws.send(request(msgid, "system.info"))
        # 3,200 requests are waiting or running; a newcomer is still answered within the liveness bound.
        await assert_alive(daemon)
        limits = limits_of(daemon)
        assert limits.peak_in_flight <= IN_FLIGHT
        # Nothing was dropped: every flooder gets all of its answers, none of them an error.
        for ws in flooders:
            got = await replies(ws, PER_CONNECTION)
            assert sorted(msgid for _, msgid, _, _ in got) == list(range(PER_CONNECTION))
            assert all(error is None for _, _, error, _ in got)
    async with Client(f"http://127.0.0.1:{daemon.bound_port}", daemon.services.token) as client:  # type: ignore[union-attr]
        assert await client.call("queue.list") == before


async def test_connections_over_the_limit_are_refused_with_503(tight_daemon: Daemon) -> None:
    daemon = tight_daemon
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(MAX_CONNECTIONS):
            await stack.enter_async_context(raw_connect(daemon))
        with pytest.raises(InvalidStatus) as caught:
            async with raw_connect(daemon):
                pass
        assert caught.value.response.status_code == 503
        assert b"max_connections" in caught.value.response.body
    # Once they close, there is room again: the count follows the connections.
    await until(lambda: _no_connections(daemon), timeout=10)
    await assert_alive(daemon)


async def _no_connections(daemon: Daemon) -> bool:
    return limits_of(daemon).open_connections == 0
