"""The engine loop never dies unseen (issue 9, item 4): a death is logged and recorded, the loop restarts with
its state rebuilt, and a loop that stays dead makes /healthz answer 503 while RPC still answers."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from cauldron_client import Client

from cauldrond.daemon import Daemon
from cauldrond.engine.supervisor import MAX_RESTARTS, Supervisor
from tests.conftest import url_of


async def test_a_loop_that_dies_is_logged_rebuilt_and_restarted(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []
    rebuilds: list[int] = []

    async def loop() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise KeyError("a bookkeeping bug")

    async def rebuild() -> None:
        rebuilds.append(len(runs))

    supervisor = Supervisor(loop, rebuild, lambda: False)
    with caplog.at_level(logging.CRITICAL, logger="cauldrond.engine.supervisor"):
        await supervisor.run()
    assert runs == [0, 1] and rebuilds == [1], "rebuilt after the death, before the second run"
    assert supervisor.restarts == 1 and not supervisor.gave_up
    assert supervisor.failure == "KeyError: 'a bookkeeping bug'"
    assert "the engine task died: KeyError" in caplog.text


async def test_a_loop_that_keeps_dying_is_given_up_after_the_limit() -> None:
    deaths: list[int] = []

    async def loop() -> None:
        deaths.append(1)
        raise RuntimeError("again")

    async def rebuild() -> None:
        pass

    supervisor = Supervisor(loop, rebuild, lambda: False)
    await asyncio.wait_for(supervisor.run(), timeout=10)
    assert len(deaths) == MAX_RESTARTS + 1 and supervisor.restarts == MAX_RESTARTS and supervisor.gave_up


async def test_healthz_tells_a_dead_engine_and_rpc_still_answers(daemon: Daemon, client: Client) -> None:
    async def health() -> tuple[int, dict[str, object]]:
        async with aiohttp.ClientSession() as session, session.get(url_of(daemon) + "/healthz") as reply:
            return reply.status, await reply.json()

    status, body = await health()
    assert status == 200 and body["engine"] is True
    assert daemon.services is not None
    task = daemon.services.engine._task
    assert task is not None
    task.cancel()  # the engine task gone, whatever the cause
    await asyncio.gather(task, return_exceptions=True)
    status, body = await health()
    assert status == 503 and body["ok"] is False and body["engine"] is False
    info = await client.call("system.info")
    assert info["engine"]["alive"] is False
