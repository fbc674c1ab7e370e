"""The crash guard blames on evidence: SIGKILLs from outside never fail a job, and a job that kills the daemon
every time it runs alone is quarantined after three such crashes while everything else is done exactly once.

Both tests restart the daemon after each death, as systemd would, and read the outcome from the SQLite file.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client
from cauldron_client.cli import cli
from click.testing import CliRunner

from tests.conftest import FAST
from tests.daemon.chaos import run_chaos, sql
from tests.daemon.crash_plugin import EXIT_CODE, PLUGIN_NAME, POISON_MARK, install_crash_plugin
from tests.daemon.process import DaemonProcess
from tests.waiting import finished

# Generous bounds: each death costs a restart (imports, model load), slow on a busy 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
# Replay a failed run with CAULDRON_CHAOS_SEED=<the seed it printed>.
CHAOS_SEED = int(os.environ.get("CAULDRON_CHAOS_SEED", "20261130"))
QUARANTINE_ERROR = "crashed the daemon 3 times while running alone"


@pytest.fixture
def processes() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for process in started:
        process.stop()


async def test_sigkills_at_random_moments_fail_nothing_and_duplicate_nothing(tmp_path: Path, models_dir: Path) -> None:
    figures = await run_chaos(tmp_path, models_dir, cells=40, kills=10, seed=CHAOS_SEED, timeout=1500)
    replay = f"seed {CHAOS_SEED}: {figures.summary()}"
    # Kills count from observed progress and a sweep through early gets another: ten kills whatever the speed.
    assert figures.kills == 10, replay
    assert figures.kills_in_batches >= 1, f"no kill landed in a running batch ({replay})"
    # Every cell of every sweep done exactly once: one image row per job and one file per row.
    assert figures.sweeps >= 1 and figures.jobs == 40 * figures.sweeps, replay
    assert (figures.done, figures.images, figures.files) == (figures.jobs,) * 3, replay
    assert (figures.duplicates, figures.orphan_files) == (0, 0), replay
    assert (figures.failed, figures.quarantined) == (0, 0) and figures.max_strikes < 3, replay
    # Every job a kill caught running became a suspect; none was failed for it.
    caught = {job_id for record in figures.log for job_id in record.running}
    suspects = {row[0] for row in sql(tmp_path / "data", "SELECT id FROM jobs WHERE suspect = 1")}
    assert caught <= suspects, replay


def crash_env(site: Path) -> dict[str, str]:
    path = [str(site), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        "PYTHONPATH": os.pathsep.join(path),
        "CAULDRON_PLUGINS": PLUGIN_NAME,
        "CAULDRON_MAX_BATCH_SIZE": "4",
        "CAULDRON_CRASH_BACKOFF_S": "1",
    }


async def life_outcome(process: DaemonProcess, experiment_id: int) -> dict[str, Any] | None:
    """The finished experiment, or None when the daemon died first (its exit status must be the plugin's)."""
    try:
        async with Client(process.url, process.token) as client:
            # Long enough for a struck suspect's wait: it tries later in each life than the run that was struck.
            return await finished(client, experiment_id, timeout=900)
    except Exception as lost:
        # The connection broke: the daemon must be exiting, by the plugin's hand.
        try:
            status = await asyncio.to_thread(process.wait_exit, 30)
        except subprocess.TimeoutExpired:
            raise lost from None
    assert status == EXIT_CODE, process.log.read_text()[-3000:]
    return None


def health_status(process: DaemonProcess) -> int:
    with urllib.request.urlopen(process.url + "/healthz", timeout=5) as response:
        return int(response.status)


async def test_a_job_that_kills_the_daemon_whenever_it_runs_alone_is_quarantined(
    tmp_path: Path, models_dir: Path, processes: list[DaemonProcess]
) -> None:
    data_dir = tmp_path / "data"
    env = crash_env(install_crash_plugin(tmp_path / "site"))

    def launch() -> DaemonProcess:
        process = DaemonProcess(data_dir, models_dir, env=env)
        processes.append(process)
        process.start()
        return process

    process = launch()
    cells = [{"prompt": f"innocent {i}", "seed": i} for i in range(21)]
    cells[5] = {"prompt": f"{POISON_MARK} poison", "seed": 5}  # in the second batch of four
    async with Client(process.url, process.token) as client:
        listed = {p["name"]: p for p in (await client.call("plugins.list"))["plugins"]}
        assert listed[PLUGIN_NAME]["status"] == "loaded" and listed[PLUGIN_NAME]["version"] == "1.0"
        created = await client.call("experiments.create", name="poisoned", base=FAST, cells=cells)
        experiment_id = created["experiment"]["id"]

    deaths = 0
    while (result := await life_outcome(process, experiment_id)) is None:
        deaths += 1
        assert deaths <= 4, "the guard let the poison job crash the daemon a fifth time"
        process = launch()  # as systemd's Restart=on-failure would

    # One death in its batch of four (blaming nobody), then three while it ran alone.
    assert deaths == 4
    jobs = {job["idx"]: job for job in result["jobs"]}
    poison = jobs.pop(5)
    assert (poison["status"], poison["last_error"]) == ("failed", QUARANTINE_ERROR)
    assert {job["status"] for job in jobs.values()} == {"done"} and len(jobs) == 20

    images = dict(sql(data_dir, "SELECT job_id, COUNT(*) FROM images GROUP BY job_id"))
    assert images == {job["id"]: 1 for job in jobs.values()}, "each innocent cell done exactly once"
    strikes = dict(sql(data_dir, "SELECT id, strikes FROM jobs"))
    assert strikes == {**{job["id"]: 0 for job in jobs.values()}, poison["id"]: 3}
    # The batch-mates of the first crash became suspects and were then run alone.
    suspects = {row[0] for row in sql(data_dir, "SELECT idx FROM jobs WHERE suspect = 1")}
    assert suspects == {4, 5, 6, 7}
    batch_sizes = {
        int(idx): json.loads(metadata)["batch_size"]
        for idx, metadata in sql(data_dir, "SELECT j.idx, i.metadata FROM images i JOIN jobs j ON j.id = i.job_id")
    }
    assert {batch_sizes[idx] for idx in (4, 6, 7)} == {1}
    assert batch_sizes[0] == 4

    # The daemon is still up, and says what it did: system.info, an event, the CLI.
    assert await asyncio.to_thread(health_status, process) == 200
    async with Client(process.url, process.token) as client:
        info = await client.call("system.info")
        assert info["recovery"]["quarantined"] == [poison["id"]]
        async with client.events(["job.quarantined"]) as stream:
            event = await stream.next(10)
    assert event is not None
    assert (event["job_id"], event["strikes"], event["error"]) == (poison["id"], 3, QUARANTINE_ERROR)
    show = ["--url", process.url, "--token", process.token, "experiments", "show", str(experiment_id)]
    shown = await asyncio.to_thread(CliRunner().invoke, cli, show)
    assert shown.exit_code == 0 and QUARANTINE_ERROR in shown.output
    assert process.terminate() == 0
