"""engine = "ray" with a cluster address where nothing answers: the daemon starts, serves, says the cluster is not
connected (/healthz stays 200, system.info, the log), keeps what is queued, and stops promptly on SIGTERM.

A subprocess: Ray's connection attempt belongs to the process that makes it, and this module's own process may
run another module's Ray cluster."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cauldron_client import Client

from tests.conftest import FAST
from tests.daemon.process import DaemonProcess, free_port
from tests.waiting import until


@pytest.fixture
def daemon(tmp_path: Path, models_dir: Path) -> Iterator[DaemonProcess]:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    process = DaemonProcess(
        tmp_path / "data", models_dir, env={"CAULDRON_ENGINE": "ray", "CAULDRON_RAY_ADDRESS": address}
    )
    process.start(timeout=120)
    try:
        yield process
    finally:
        process.stop()


def healthz(daemon: DaemonProcess) -> dict[str, object]:
    with urllib.request.urlopen(daemon.url + "/healthz", timeout=5) as response:
        assert response.status == 200
        body: dict[str, object] = json.loads(response.read())
        return body


async def test_daemon_stays_up_and_keeps_the_queue_without_its_cluster(daemon: DaemonProcess) -> None:
    body = healthz(daemon)
    assert body["ok"] is True and body["ray"] == {"connected": False, "workers_ready": 0}
    async with Client(daemon.url, daemon.token) as client:
        info = await client.call("system.info")
        scaleout = info["scaleout"]
        assert scaleout["engine"] == "ray" and scaleout["connected"] is False
        assert scaleout["address"] in scaleout["error"] and scaleout["workers"] == []
        created = await client.call("experiments.create", name="waits", base=FAST, axes={"seed": [1, 2]})
        experiment_id = created["experiment"]["id"]
        listed = await client.call("queue.list")
        assert listed["total"] == 2 and listed["running"] == []
        # The daemon keeps answering while Ray is still trying to connect.
        counts = (await client.call("experiments.get", experiment_id=experiment_id))["experiment"]["counts"]
        assert counts["queued"] == 2 and counts["running"] == 0

    async def logged() -> bool:
        return "batches wait in the queue until it answers" in daemon.log.read_text()

    await until(logged, timeout=30)
    assert daemon.terminate(timeout=30) == 0
    with sqlite3.connect(daemon.data_dir / "cauldron.sqlite3") as db:
        statuses = [row[0] for row in db.execute("SELECT status FROM jobs WHERE experiment_id = ?", (experiment_id,))]
    assert statuses == ["queued", "queued"]
