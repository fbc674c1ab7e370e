"""The Ray cluster the daemon joins is missing at start, comes up later, is lost mid-sweep (its head killed, or
frozen as behind a cut network) and comes back at the same address: the daemon never exits, says so in /healthz,
system.info and its log, puts the lost batches' jobs back in the queue, and finishes the sweep with every cell done
exactly once.

The daemon is a subprocess, as in production: Ray's driver lives in the daemon's process. The head is started with
Ray's own CLI (``ray start --head``, as docs/scale-out.md tells the owner) in a temp dir of its own, and stopped by
killing that temp dir's processes only: ``ray stop`` would stop every Ray cluster of this user on this machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from cauldron_client import Client

from tests.conftest import FAST
from tests.daemon.process import DaemonProcess, free_port
from tests.scaleout.test_ray_engine import DoneEvents, counts_of
from tests.waiting import finished, until

CELLS = 8
STEPS = 20  # long enough that a batch is still denoising when the head is killed after its first step


class RayHead:
    """A single-node Ray cluster started with ``ray start --head`` on loopback, two CPUs, with Ray's token
    authentication on (its own token, as docs/scale-out.md sets a cluster up; the daemon gets the same)."""

    def __init__(self, port: int) -> None:
        self.port = port
        # Short: Ray's unix sockets live under it, and a socket path may not exceed 107 bytes.
        self.temp_dir = tempfile.mkdtemp(prefix="cauldron-ray-", dir="/tmp")  # nosec B108 - private, removed after
        token = Path(self.temp_dir) / "auth_token"
        token.write_text(secrets.token_hex(32))
        self.env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--head",
            f"--port={self.port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={self.temp_dir}",
        ]
        env = {**os.environ, **self.env}
        done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False, env=env)  # nosec B603
        assert done.returncode == 0, done.stdout + done.stderr

    def processes(self) -> list[psutil.Process]:
        """This cluster's processes: the GCS, the raylet and Ray's helpers name the temp dir on their command
        line; the workers are the raylet's children."""
        found: dict[int, psutil.Process] = {}
        for process in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                if any(self.temp_dir in part for part in process.info["cmdline"] or ()):
                    found[process.pid] = process
                    found.update((child.pid, child) for child in process.children(recursive=True))
        return list(found.values())

    def freeze(self) -> None:
        """SIGSTOP every process of the cluster: it neither answers nor hangs up, as behind a cut network."""
        for process in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                process.suspend()

    def kill(self) -> None:
        processes = self.processes()
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        _, alive = psutil.wait_procs(processes, timeout=30)
        assert not alive, alive


@pytest.fixture
def head() -> Iterator[RayHead]:
    cluster = RayHead(free_port())
    try:
        yield cluster
    finally:
        cluster.kill()
        shutil.rmtree(cluster.temp_dir, ignore_errors=True)


@pytest.fixture
def daemon(tmp_path: Path, models_dir: Path, head: RayHead) -> Iterator[DaemonProcess]:
    env = {
        "CAULDRON_ENGINE": "ray",
        "CAULDRON_RAY_ADDRESS": head.address,  # nothing there yet
        "CAULDRON_RAY_CPU_WORKERS": "2",
        "CAULDRON_RAY_WORKER_THREADS": "1",
        "CAULDRON_MAX_BATCH_SIZE": "2",
        **head.env,
    }
    process = DaemonProcess(tmp_path / "data", models_dir, env=env)
    try:
        process.start(timeout=120)
        yield process
    finally:
        process.stop()


def healthz(daemon: DaemonProcess) -> dict[str, Any]:
    with urllib.request.urlopen(daemon.url + "/healthz", timeout=5) as response:  # nosec B310 - loopback
        assert response.status == 200
        body: dict[str, Any] = json.loads(response.read())
        return body


async def ray_health(daemon: DaemonProcess, connected: bool, workers: int = 0) -> dict[str, Any] | None:
    """/healthz's Ray part once it says ``connected`` (and, when connected, ``workers`` ready); the daemon stays
    healthy (200, ok) all along."""
    assert daemon.proc is not None and daemon.proc.poll() is None, "the daemon exited"
    body = healthz(daemon)
    assert body["ok"] is True and body["engine"] is True, body
    ray: dict[str, Any] = body["ray"]
    if ray["connected"] is connected and (not connected or ray["workers_ready"] >= workers):
        return ray
    return None


@pytest.mark.parametrize("lost", ["killed", "frozen"])
async def test_the_sweep_survives_a_cluster_that_comes_late_and_is_lost_midway(
    daemon: DaemonProcess, head: RayHead, lost: str
) -> None:
    """``lost``: every process of the head node SIGKILLed (its workers die with it and their streams break), or
    SIGSTOPped (nothing answers and no stream ends: the daemon has to drop them itself)."""
    address = head.address
    assert await ray_health(daemon, connected=False) is not None
    async with Client(daemon.url, daemon.token) as client, DoneEvents(client) as done:
        created = await client.call(
            "experiments.create", name="return", base={**FAST, "steps": STEPS}, axes={"seed": list(range(1, CELLS + 1))}
        )
        experiment_id = created["experiment"]["id"]
        assert (await counts_of(client, experiment_id))["queued"] == CELLS

        # (a) The cluster comes up after the daemon: the daemon joins it and the queue starts moving.
        head.start()
        async with client.events(["job.progress"]) as stream:
            await until(lambda: ray_health(daemon, connected=True, workers=1), timeout=240)
            while True:  # a batch of the sweep is denoising on a worker
                event = await stream.next(240)
                assert event is not None, "no progress from the cluster"
                # One that has most of its steps ahead: the batch is still denoising when the head is killed.
                if event["experiment_id"] == experiment_id and 1 <= event["step"] <= STEPS // 2:
                    break

        # (b) The head dies mid-sweep: the daemon stays up, reports the loss and puts the lost batches back.
        if lost == "frozen":
            head.freeze()
        else:
            head.kill()
        killed_at = time.monotonic()
        down = await until(lambda: ray_health(daemon, connected=False), timeout=120)
        seen_down_at = time.monotonic()
        assert down["workers_ready"] == 0
        info = (await client.call("system.info"))["scaleout"]
        assert info["connected"] is False
        assert info["error"].startswith(f"lost the Ray cluster at {address}"), info["error"]
        assert all(worker["state"] != "ready" for worker in info["workers"]), info["workers"]

        async def put_back() -> dict[str, int] | None:
            counts = await counts_of(client, experiment_id)
            return counts if counts["running"] == 0 else None

        counts = await until(put_back, timeout=60)
        assert counts["queued"] >= 1 and counts["queued"] + counts["done"] == CELLS, counts
        assert (await client.call("queue.list"))["total"] == counts["queued"]
        assert await ray_health(daemon, connected=False) is not None  # still down, still serving
        head.kill()  # what is left of it, before a head starts again at the address

        # The head comes back at the same address (a new cluster: Ray keeps no state without GCS fault
        # tolerance): the daemon joins it again and finishes the sweep.
        head.start()
        started_at = time.monotonic()
        await until(lambda: ray_health(daemon, connected=True, workers=1), timeout=240)
        back_at = time.monotonic()
        result = await finished(client, experiment_id, timeout=300)
        assert result["experiment"]["counts"]["done"] == CELLS
        info = (await client.call("system.info"))["scaleout"]
        assert info["connected"] is True and info["error"] is None
    assert_each_job_done_once(daemon, experiment_id, done.counts)
    # For docs/scale-out.md (-s shows it); not asserted: wall-clock times depend on the machine.
    print(
        f"loss seen after {seen_down_at - killed_at:.1f} s; a worker ready {back_at - started_at:.1f} s after the head"
    )

    log = daemon.log.read_text()
    lost_at = log.index(f"lost the Ray cluster at {address}")
    assert log.count(f"connected to Ray ({address})") == 2, log[-4000:]
    assert log.rindex(f"connected to Ray ({address})") > lost_at
    if lost == "frozen":
        # The streams stayed open: the daemon dropped them when it saw the loss and put their jobs back as they
        # were, with no attempt counted.
        assert "requeued the Ray cluster was lost" in log[lost_at:]
    # Killed, the head takes its workers with it and their streams fail as "unavailable", a cause outside the
    # batch (scaleout/crash_guard.py, known_external): frozen or killed, no attempt is counted and no suspect made.
    assert_no_attempt_counted(daemon, experiment_id)
    assert daemon.terminate(timeout=60) == 0


def assert_no_attempt_counted(daemon: DaemonProcess, experiment_id: int) -> None:
    with sqlite3.connect(f"file:{daemon.data_dir / 'cauldron.sqlite3'}?mode=ro", uri=True) as db:
        attempts = [row[0] for row in db.execute("SELECT attempts FROM jobs WHERE experiment_id = ?", (experiment_id,))]
    assert attempts == [0] * CELLS
    with sqlite3.connect(f"file:{daemon.data_dir / 'cauldron.sqlite3'}?mode=ro", uri=True) as db:
        suspects = [row[0] for row in db.execute("SELECT suspect FROM jobs WHERE experiment_id = ?", (experiment_id,))]
    assert suspects == [0] * CELLS


def assert_each_job_done_once(daemon: DaemonProcess, experiment_id: int, done_events: Any) -> None:
    with sqlite3.connect(f"file:{daemon.data_dir / 'cauldron.sqlite3'}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        jobs = db.execute("SELECT * FROM jobs WHERE experiment_id = ? ORDER BY idx", (experiment_id,)).fetchall()
        images = db.execute("SELECT * FROM images WHERE experiment_id = ?", (experiment_id,)).fetchall()
    assert [job["status"] for job in jobs] == ["done"] * CELLS
    # One image row per job, one PNG per image, one job.done per job: none lost, none done twice.
    assert sorted(image["job_id"] for image in images) == sorted(job["id"] for job in jobs)
    assert {job_id: count for job_id, count in done_events.items()} == {job["id"]: 1 for job in jobs}
    folder = daemon.data_dir / "images" / f"exp-{experiment_id:06d}"
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(Path(image["path"]).name for image in images)
    # A lost cluster is not the jobs' fault: no crash-guard strike.
    assert all(job["strikes"] == 0 for job in jobs)


async def test_a_cluster_that_wants_a_token_the_daemon_lacks_is_named_as_such(
    tmp_path: Path, models_dir: Path, head: RayHead
) -> None:
    """Ray reports a refused token as a generic "Failed to connect" (the cause is chained deep inside): the
    daemon's status says what to set instead, and it keeps serving and stops cleanly."""
    head.start()
    env = {"CAULDRON_ENGINE": "ray", "CAULDRON_RAY_ADDRESS": head.address, "RAY_AUTH_MODE": "disabled"}
    daemon = DaemonProcess(tmp_path / "data", models_dir, env=env)
    try:
        daemon.start(timeout=120)
        async with Client(daemon.url, daemon.token) as client:

            async def refused() -> dict[str, Any] | None:
                scaleout: dict[str, Any] = (await client.call("system.info"))["scaleout"]
                return scaleout if "token" in (scaleout["error"] or "") else None

            scaleout = await until(refused, timeout=180)
        assert scaleout["connected"] is False and scaleout["workers"] == []
        assert head.address in scaleout["error"] and "RAY_AUTH_MODE=token" in scaleout["error"], scaleout["error"]
        assert await ray_health(daemon, connected=False) is not None
        assert "RAY_AUTH_MODE=token" in daemon.log.read_text()
        assert daemon.terminate(timeout=60) == 0
    finally:
        daemon.stop()
