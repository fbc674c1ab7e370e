"""log_format = "json": the real cauldrond process writes one JSON object per line, and the lines about jobs
name the experiments and jobs this test created: the job log's own lines and the provider's model-load line,
which is written on the GPU worker thread while the first batch runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client

from tests.conftest import FAST
from tests.daemon.process import DaemonProcess
from tests.waiting import finished

pytestmark = pytest.mark.slow


def parsed_lines(log: Path) -> list[dict[str, Any]]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines
    records = []
    for line in lines:
        record = json.loads(line)  # every line, not just ours: nothing may write bare text
        assert isinstance(record, dict), line
        records.append(record)
    return records


# A daemon start (torch imports) and a model load take minutes on a shared 2-core machine under load.
@pytest.mark.timeout(900)
async def test_json_logs_carry_the_experiment_and_job_ids(tmp_path: Path, models_dir: Path) -> None:
    daemon = DaemonProcess(tmp_path / "data", models_dir, "--log-format", "json")
    daemon.start(timeout=300)  # a shared machine under load can take minutes to import torch
    try:
        created: dict[int, int] = {}  # job id -> experiment id, from the daemon's answers
        async with Client(daemon.url, daemon.token) as client:
            for name, seeds in (("first", [1, 2, 3]), ("second", [4])):
                made = await client.call("experiments.create", name=name, base=FAST, axes={"seed": seeds})
                experiment_id = made["experiment"]["id"]
                result = await finished(client, experiment_id)
                assert result["experiment"]["counts"]["done"] == len(seeds)
                created.update({job["id"]: experiment_id for job in result["jobs"]})
        assert daemon.terminate(timeout=60) == 0
    finally:
        daemon.stop()

    records = parsed_lines(daemon.log)
    assert {"time", "level", "logger", "message"} <= records[0].keys()

    about_jobs = [r for r in records if "job_ids" in r or "job_id" in r]
    for record in about_jobs:
        job_ids = record["job_ids"]
        assert set(job_ids) <= created.keys(), record
        assert record["experiment_ids"] == sorted({created[job] for job in job_ids}), record
        if len(job_ids) == 1:
            assert record["job_id"] == job_ids[0] and record["experiment_id"] == created[job_ids[0]], record

    # Each job has its own "done" line naming it and its experiment.
    done = {r["job_id"]: r["experiment_id"] for r in about_jobs if r.get("event") == "job.done"}
    assert done == created

    # The model loads on the worker thread during the first batch (the first experiment's 3 cells: the default
    # max_batch_size is 4): that line carries the batch's ids from the engine's context.
    first_batch = sorted(job for job, experiment in created.items() if experiment == min(created.values()))
    loads = [r for r in records if r["message"].startswith("loaded model tiny-sd")]
    assert len(loads) == 1
    assert loads[0]["job_ids"] == first_batch
    assert loads[0]["experiment_id"] == min(created.values())

    # Lines outside any batch name no job.
    ready = [r for r in records if r["message"].startswith("cauldrond ready")]
    assert len(ready) == 1 and "job_ids" not in ready[0] and ready[0]["level"] == "INFO"


def test_plain_logs_stay_plain_by_default(tmp_path: Path, models_dir: Path) -> None:
    daemon = DaemonProcess(tmp_path / "data", models_dir)
    daemon.start(timeout=300)  # a shared machine under load can take minutes to import torch
    try:
        assert daemon.terminate(timeout=60) == 0
    finally:
        daemon.stop()
    lines = [line for line in daemon.log.read_text().splitlines() if "cauldrond ready" in line]
    assert len(lines) == 1
    assert not lines[0].startswith("{")
    assert " INFO cauldrond.daemon: cauldrond ready" in lines[0]
