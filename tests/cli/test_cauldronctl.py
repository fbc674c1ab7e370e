"""cauldronctl end to end against a real cauldrond subprocess."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cauldron_client.cli import cli
from click.testing import CliRunner, Result

from tests.daemon.process import DaemonProcess

pytestmark = pytest.mark.slow

SMALL = ["--width", "64", "--height", "64"]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path_factory.mktemp("ctl") / "data", models_dir)
    process.start()
    yield process
    assert process.terminate() == 0


def ctl(daemon: DaemonProcess, *args: str) -> Result:
    runner = CliRunner()
    return runner.invoke(cli, ["--url", daemon.url, "--token", daemon.token, *args], catch_exceptions=False)


def test_status_models_samplers(daemon: DaemonProcess) -> None:
    status = ctl(daemon, "--json", "status")
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["api_version"] == 1
    models = ctl(daemon, "models")
    assert "tiny-sd" in models.stdout and "random" in models.stdout
    samplers = ctl(daemon, "samplers")
    assert "DPM++ 2M" in samplers.stdout and "Karras" in samplers.stdout


def test_sweep_with_watch_prints_every_image(daemon: DaemonProcess) -> None:
    result = ctl(
        daemon,
        "sweep",
        "--prompt",
        "a fox",
        "--sampler",
        "Euler",
        "--sampler",
        "Euler a",
        "--steps",
        "2,3",
        "--seed",
        "1,2",
        *SMALL,
        "--watch",
    )
    assert result.exit_code == 0, result.output
    files = [line for line in result.stdout.splitlines() if line.endswith(".png")]
    assert len(files) == 8
    assert all(Path(file).is_file() for file in files)


def test_generate_then_experiments_and_images_commands(daemon: DaemonProcess, tmp_path: Path) -> None:
    created = ctl(daemon, "--json", "generate", "a boat", "--steps", "2", "--seed", "42", *SMALL, "--watch")
    assert created.exit_code == 0, created.output
    listed = json.loads(ctl(daemon, "--json", "experiments", "list").stdout)
    experiment_id = listed["experiments"][0]["id"]
    shown = ctl(daemon, "experiments", "show", str(experiment_id))
    assert shown.exit_code == 0 and "done" in shown.stdout
    images = json.loads(ctl(daemon, "--json", "images", "list", "--experiment", str(experiment_id)).stdout)
    image = images["images"][0]
    assert image["seed"] == 42
    fetched = ctl(daemon, "images", "fetch", str(image["id"]), "--out", str(tmp_path))
    assert fetched.exit_code == 0, fetched.output
    png = tmp_path / f"e{experiment_id}-0000.png"  # experiment and cell index; a generate has no axes
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size == image["size_bytes"]


def test_queue_pause_priority_cancel(daemon: DaemonProcess) -> None:
    assert ctl(daemon, "queue", "pause").exit_code == 0
    try:
        created = json.loads(ctl(daemon, "--json", "sweep", "--prompt", "x", "--seed", "1,2,3", *SMALL).stdout)
        experiment_id = str(created["experiment"]["id"])
        queued = json.loads(ctl(daemon, "--json", "queue", "list").stdout)
        assert queued["paused"] is True and queued["total"] == 3
        assert ctl(daemon, "experiments", "priority", experiment_id, "7").exit_code == 0
        assert json.loads(ctl(daemon, "--json", "queue", "list").stdout)["jobs"][0]["priority"] == 7
        cancelled = ctl(daemon, "--json", "experiments", "cancel", experiment_id)
        assert json.loads(cancelled.stdout)["cancelled"] == 3
        assert json.loads(ctl(daemon, "--json", "queue", "list").stdout)["total"] == 0
    finally:
        assert ctl(daemon, "queue", "resume").exit_code == 0


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["experiments", "show", "999999"], 2, "not_found"),
        (["generate", "x", "--steps", "9999"], 2, "invalid_params"),
        (["sweep", "--prompt", "x", "--sampler", "Bogus"], 2, "Bogus"),
    ],
)
def test_daemon_errors_are_one_line_and_nonzero(daemon: DaemonProcess, args: list[str], code: int, needle: str) -> None:
    before = ctl(daemon, "--json", "experiments", "list").stdout
    result = ctl(daemon, *args)
    assert result.exit_code == code
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert ctl(daemon, "--json", "experiments", "list").stdout == before


def test_wrong_token_is_refused_in_one_line(daemon: DaemonProcess) -> None:
    result = CliRunner().invoke(cli, ["--url", daemon.url, "--token", "nope", "status"])
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
