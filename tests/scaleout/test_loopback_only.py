"""``ray_address = "local"``: the private Ray the daemon starts listens on loopback only (docs/security.md, Ray).

The daemon runs as a subprocess (Ray reads the switch at its first import, which in this test process has
happened already); every process of its private cluster is a descendant of it. The expected addresses come from
the operating system's own table of listening sockets (psutil), not from anything Ray or the daemon reports.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from cauldron_client import Client

from tests.conftest import FAST
from tests.daemon.process import DaemonProcess
from tests.waiting import finished, until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def daemon(tmp_path: Path, models_dir: Path) -> Iterator[DaemonProcess]:
    process = DaemonProcess(
        tmp_path / "data",
        models_dir,
        env={
            "CAULDRON_ENGINE": "ray",
            "CAULDRON_RAY_ADDRESS": "local",
            "CAULDRON_RAY_CPU_WORKERS": "1",
            "CAULDRON_RAY_WORKER_THREADS": "1",
        },
    )
    try:
        process.start(timeout=120)
        yield process
    finally:
        process.stop()


def listening(pids: set[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every TCP socket these processes listen on."""
    found = []
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found += [(pid, c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN]
    return found


def is_loopback(address: str) -> bool:
    parsed = ipaddress.ip_address(address)
    mapped = getattr(parsed, "ipv4_mapped", None)
    return bool((mapped or parsed).is_loopback)


async def test_the_private_cluster_listens_on_loopback_only(daemon: DaemonProcess) -> None:
    assert daemon.proc is not None
    async with Client(daemon.url, daemon.token) as client:

        async def worker_ready() -> list[dict[str, Any]] | None:
            listed: list[dict[str, Any]] = (await client.call("system.info"))["scaleout"]["workers"]
            return listed if any(worker["state"] == "ready" for worker in listed) else None

        await until(worker_ready, timeout=300)
        created = await client.call("experiments.create", name="loopback", base=FAST, axes={"seed": [1, 2]})
        result = await finished(client, created["experiment"]["id"], timeout=240)
        assert result["experiment"]["counts"]["done"] == 2

        family = {daemon.proc.pid} | {child.pid for child in psutil.Process(daemon.proc.pid).children(recursive=True)}
        sockets = [entry for entry in listening(family) if entry[2] != daemon.port]  # the daemon's own HTTP port
        # The GCS, raylet, object manager, agents and the worker: a cluster that listens on nothing is no cluster.
        assert len(sockets) >= 4, sockets
        assert all(is_loopback(address) for _, address, _ in sockets), sockets
