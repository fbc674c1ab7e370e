"""Kill the daemon in the middle of work and restart it: nothing is lost, nothing is done twice."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cauldron_client import Client

from tests.conftest import FAST
from tests.daemon.process import DaemonProcess
from tests.waiting import finished, until

pytestmark = pytest.mark.slow


@pytest.fixture
def processes() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for process in started:
        process.stop()


def launch(processes: list[DaemonProcess], data_dir: Path, models_dir: Path, *extra: str) -> DaemonProcess:
    process = DaemonProcess(data_dir, models_dir, *extra)
    processes.append(process)
    process.start()
    return process


def rows(data_dir: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(data_dir / "cauldron.sqlite3") as db:
        return db.execute(sql).fetchall()


async def test_sigkill_mid_sweep_then_restart_loses_nothing(
    tmp_path: Path, models_dir: Path, processes: list[DaemonProcess]
) -> None:
    data_dir = tmp_path / "data"
    first = launch(processes, data_dir, models_dir, "--log-level", "INFO")
    async with Client(first.url, first.token) as client:
        created = await client.call(
            "experiments.create",
            name="24 cells",
            base={**FAST, "steps": 6},
            axes={"sampler": ["Euler", "Euler a", "DDIM"], "seed": [1, 2, 3, 4], "cfg_scale": [5.0, 7.0]},
        )
        experiment_id = created["experiment"]["id"]

        async def some_done() -> bool:
            got = await client.call("experiments.get", experiment_id=experiment_id)
            return 3 <= got["experiment"]["counts"]["done"] < 24

        await until(some_done, timeout=120, interval=0.02)
    first.kill()

    second = launch(processes, data_dir, models_dir)
    async with Client(second.url, second.token) as client:
        result = await finished(client, experiment_id, timeout=240)
    assert result["experiment"]["counts"]["done"] == 24
    second.terminate()

    images = rows(data_dir, "SELECT job_id, path, sha256 FROM images")
    job_ids = [row[0] for row in images]
    assert len(job_ids) == 24 and len(set(job_ids)) == 24, "every cell done exactly once"
    for _, path, sha256 in images:
        file = data_dir / "images" / str(path)
        assert hashlib.sha256(file.read_bytes()).hexdigest() == sha256
    on_disk = {p.relative_to(data_dir / "images").as_posix() for p in (data_dir / "images").rglob("*") if p.is_file()}
    assert on_disk == {str(row[1]) for row in images}, "no orphan or temp files"


async def test_sigterm_requeues_the_running_batch_and_exits_zero(
    tmp_path: Path, models_dir: Path, processes: list[DaemonProcess]
) -> None:
    data_dir = tmp_path / "data"
    process = launch(processes, data_dir, models_dir)
    async with Client(process.url, process.token) as client:
        created = await client.call("generate", **{**FAST, "steps": 500, "width": 128, "height": 128, "seed": 9})
        job_id = created["job_ids"][0]

        async def running() -> bool:
            return bool((await client.call("queue.list"))["running"])

        await until(running, timeout=60, interval=0.01)
    assert process.terminate(timeout=10) == 0
    assert rows(data_dir, f"SELECT status, attempts FROM jobs WHERE id = {int(job_id)}") == [("queued", 0)]
    assert "stopped" in process.log.read_text()
