"""Abuse item 3 (issue 9): a 64 KB ComfyUI PNG that inflates to 13 MB of workflow is refused at once, six at a
time run on the imports pool (two threads of its own, never the default executor) while system.info is answered,
and SIGTERM ends the daemon promptly even with imports in flight."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client, RpcError

from cauldrond.daemon import Daemon
from tests.conftest import FAST
from tests.daemon.process import DaemonProcess
from tests.rpc.abuse import assert_alive, comfyui_bombs, raw_connect, request

BOMB = comfyui_bombs().bomb_png()
ATTACKERS = 6


async def test_six_import_bombs_are_refused_without_starving_anyone(daemon: Daemon, client: Client) -> None:
    assert len(BOMB) < 64 * 1024
    await client.call("queue.pause")
    await client.call("experiments.create", name="keep", base=FAST, axes={"seed": [1, 2, 3]})
    before = await client.call("queue.list")

    async def attack() -> Any:
        try:
            return await client.call("imports.run", content=BOMB, filename="bomb.png", format="comfyui", queue=True)
        except RpcError as exc:
            return exc

    attacks = [asyncio.create_task(attack()) for _ in range(ATTACKERS)]
    await assert_alive(daemon)
    outcomes = await asyncio.gather(*attacks)
    for outcome in outcomes:
        assert isinstance(outcome, RpcError) and outcome.code == "invalid_params"
        assert "inflates past" in outcome.message
    pool = daemon.services.import_pool  # type: ignore[union-attr]
    assert pool.completed >= ATTACKERS and pool.peak_running <= pool.workers
    assert await client.call("queue.list") == before  # nothing queued, nothing lost
    assert (await client.call("experiments.list"))["experiments"][0]["name"] == "keep"


@pytest.mark.slow
def test_sigterm_ends_the_daemon_with_imports_in_flight(tmp_path: Path, models_dir: Path) -> None:
    process = DaemonProcess(tmp_path / "data", models_dir)
    process.start()
    try:

        async def flood() -> None:
            async with raw_connect_to(process) as ws:
                for msgid in range(ATTACKERS):
                    await ws.send(request(msgid, "imports.run", content=BOMB, filename="bomb.png", format="comfyui"))
                assert process.proc is not None
                process.proc.send_signal(signal.SIGTERM)

        asyncio.run(flood())
        assert process.proc is not None
        assert process.proc.wait(timeout=20) == 0  # a bound on liveness, not a speed figure
    finally:
        process.stop()


def raw_connect_to(process: DaemonProcess) -> Any:
    from websockets.asyncio.client import connect

    headers = {"Authorization": f"Bearer {process.token}"}
    return connect(f"ws://127.0.0.1:{process.port}/rpc", additional_headers=headers, max_size=None)


assert raw_connect  # the in-process tests' helper; the subprocess one above needs the process's own port
