"""A poison job on Ray workers: a job whose run kills its worker's process every time (a driver fault, the OOM
killer at one size). The crash guard's rules apply to worker deaths as to the daemon's own (docs/scale-out.md,
Failure): the poison job is quarantined after ``max_attempts`` deaths while it ran alone, every job it shared a
batch with finishes exactly once, and the workers it killed are not dropped for it.

The poison comes from tests/daemon/crash_plugin.py, a provider plugin installed the way pip installs one (an
entry point on PYTHONPATH); the daemon runs as a subprocess whose private Ray cluster, and so every worker,
inherits that path, as workers on a node inherit the packages installed there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client

from tests.conftest import FAST
from tests.daemon.chaos import sql
from tests.daemon.crash_plugin import PLUGIN_NAME, POISON_MARK, install_crash_plugin
from tests.daemon.process import DaemonProcess
from tests.waiting import finished, until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
MAX_ATTEMPTS = 3  # the setting's default
# docs/scale-out.md, Failure: the reason a quarantined job carries.
QUARANTINE_ERROR = f"crashed its Ray worker {MAX_ATTEMPTS} times while running alone"


@pytest.fixture
def daemon(tmp_path: Path, models_dir: Path) -> Iterator[DaemonProcess]:
    site = install_crash_plugin(tmp_path / "site")
    path = [str(site), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    process = DaemonProcess(
        tmp_path / "data",
        models_dir,
        env={
            "PYTHONPATH": os.pathsep.join(path),
            "CAULDRON_PLUGINS": PLUGIN_NAME,
            "CAULDRON_ENGINE": "ray",
            "CAULDRON_RAY_ADDRESS": "local",
            "CAULDRON_RAY_CPU_WORKERS": "2",
            "CAULDRON_RAY_WORKER_THREADS": "1",
            "CAULDRON_MAX_BATCH_SIZE": "2",
            "CAULDRON_CRASH_BACKOFF_S": "0",
        },
    )
    try:
        process.start(timeout=120)
        yield process
    finally:
        process.stop()  # SIGTERM: the daemon shuts its private Ray down


async def test_a_job_that_kills_its_worker_is_quarantined_and_its_batch_mates_finish(daemon: DaemonProcess) -> None:
    cells = [{"prompt": f"cell {index}", "seed": index} for index in range(6)]
    cells[2] = {"prompt": f"{POISON_MARK} poison", "seed": 2}  # shares a batch of two with cell 3
    async with Client(daemon.url, daemon.token) as client:
        created = await client.call("experiments.create", name="poisoned", base=FAST, cells=cells)
        experiment_id = created["experiment"]["id"]
        result = await finished(client, experiment_id, timeout=600)
        assert daemon.proc is not None and daemon.proc.poll() is None, "the daemon itself must live on"

        jobs = {job["idx"]: job for job in result["jobs"]}
        poison = jobs.pop(2)
        assert (poison["status"], poison["last_error"]) == ("failed", QUARANTINE_ERROR)
        assert all(job["status"] == "done" for job in jobs.values()), jobs

        async def workers_ready() -> list[dict[str, Any]] | None:
            listed = (await client.call("system.info"))["scaleout"]["workers"]
            return listed if len(listed) == 2 and all(w["state"] == "ready" for w in listed) else None

        # Its deaths were put down to the job: no worker was dropped (three deaths in ten minutes would drop one).
        workers = await until(workers_ready, timeout=240)
        assert sum(worker["deaths"] for worker in workers) <= 1, workers  # at most the death in the shared batch

    data = daemon.data_dir
    strikes = dict(sql(data, "SELECT idx, strikes FROM jobs WHERE experiment_id = ?", experiment_id))
    assert strikes == {index: (MAX_ATTEMPTS if index == 2 else 0) for index in range(6)}
    # The batch mate ran alone afterwards (a suspect) and finished; every other cell finished exactly once.
    suspect_rows = sql(data, "SELECT idx FROM jobs WHERE experiment_id = ? AND suspect = 1", experiment_id)
    suspects = {row[0] for row in suspect_rows}
    assert {2, 3} <= suspects
    images = sql(data, "SELECT j.idx, COUNT(i.id) FROM jobs j LEFT JOIN images i ON i.job_id = j.id GROUP BY j.id")
    assert dict(images) == {index: (0 if index == 2 else 1) for index in range(6)}
    files = sorted((data / "images").rglob("*.png"))
    assert len(files) == 5
