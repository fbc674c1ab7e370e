"""What a new user sees from cauldronctl (issue 8): one seed per sweep unless --vary-seed, and a sampler's schedules
kept apart under A1111's names, against a real cauldrond subprocess on the tiny model."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cauldron_client.cli import cli
from click.testing import CliRunner, Result

from tests.daemon.process import DaemonProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path_factory.mktemp("ctl-seeds") / "data", models_dir)
    process.start()
    yield process
    assert process.terminate() == 0


def ctl(daemon: DaemonProcess, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--url", daemon.url, "--token", daemon.token, *args], catch_exceptions=False, terminal_width=200
    )


def job_seeds(daemon: DaemonProcess, experiment_id: int) -> list[int]:
    shown = json.loads(ctl(daemon, "--json", "experiments", "show", str(experiment_id)).stdout)
    return [job["params"]["seed"] for job in shown["jobs"]]


def test_the_issues_sweep_shares_one_seed_and_says_so(daemon: DaemonProcess) -> None:
    created = ctl(
        daemon, "--json", "sweep", "--prompt", "a red fox in snow", "--steps", "2-6 (+2)",
        "--axis", "prompt_sr=fox,cat,owl", "--size", "64x64",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    experiment_id = int(json.loads(created.stdout)["experiment"]["id"])
    seeds = job_seeds(daemon, experiment_id)
    assert len(seeds) == 9 and len(set(seeds)) == 1
    shown = ctl(daemon, "experiments", "show", str(experiment_id))
    assert f"seed {seeds[0]} for every cell" in shown.stdout.splitlines()
    assert ctl(daemon, "experiments", "cancel", str(experiment_id)).exit_code == 0  # its images are not needed


def test_vary_seed_gives_each_cell_its_own(daemon: DaemonProcess) -> None:
    created = ctl(
        daemon, "--json", "sweep", "--prompt", "a red fox in snow", "--steps", "2,3",
        "--axis", "prompt_sr=fox,cat", "--size", "64x64", "--vary-seed",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    experiment_id = int(json.loads(created.stdout)["experiment"]["id"])
    assert len(set(job_seeds(daemon, experiment_id))) == 4
    shown = ctl(daemon, "experiments", "show", str(experiment_id)).stdout
    assert "seeds: each cell drew its own for a seed of -1 (vary_seed)" in shown.splitlines()
    assert ctl(daemon, "experiments", "cancel", str(experiment_id)).exit_code == 0


def test_two_schedules_of_one_sampler_are_two_rows(daemon: DaemonProcess) -> None:
    created = ctl(
        daemon, "--json", "convergence", "--prompt", "a lighthouse", "--model", "tiny-sd",
        "--sampler", "DPM++ 2M", "--sampler", "DPM++ 2M Karras", "--steps", "2,4", "--seed", "3", "--size", "64x64",
        "--watch",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    experiment_id = str(json.loads(created.stdout)["experiment"]["id"])
    analysis = ctl(daemon, "analyze", experiment_id, "--no-plot")
    assert analysis.exit_code == 0, analysis.output
    lines = analysis.stdout.splitlines()
    # A1111's names for the two: "DPM++ 2M" and "DPM++ 2M Karras" (its sampler list).
    rows = sorted(re.split(r"\s{2,}", line.strip())[0] for line in lines[2:4])
    assert rows == ["DPM++ 2M", "DPM++ 2M Karras"]
    assert "sampler DPM++ 2M Karras" in analysis.stdout  # the timing table too
    shown = ctl(daemon, "experiments", "show", experiment_id).stdout
    job_lines = [line for line in shown.splitlines() if re.match(r"\s*\d+\s+\d+\s+done", line)]
    # The jobs table's sampler column: two jobs (steps 2 and 4) of each.
    assert sum("DPM++ 2M Karras" in line for line in job_lines) == 2 and len(job_lines) == 4
