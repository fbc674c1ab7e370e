"""Listings that say when there is more and how to page, newest first; fetched files a person can tell apart;
grids that never overwrite without --force; did-you-mean on the command line. A real cauldrond subprocess."""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cauldron_client.cli import cli
from click.testing import CliRunner, Result

from tests.daemon.process import DaemonProcess

pytestmark = pytest.mark.slow

SMALL = ["--size", "64x64"]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path_factory.mktemp("listings") / "data", models_dir)
    process.start()
    yield process
    assert process.terminate() == 0


def ctl(daemon: DaemonProcess, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--url", daemon.url, "--token", daemon.token, *args], catch_exceptions=False)


def hint_args(daemon: DaemonProcess, result: Result, what: str) -> list[str]:
    """The command line a "more ...:" hint prints, without the global options (which it must carry)."""
    match = re.search(rf"^more {what}: (.+)$", result.stderr, re.MULTILINE)
    assert match is not None, result.stderr
    words = shlex.split(match.group(1))
    assert words[:3] == ["cauldronctl", "--url", daemon.url]  # pasteable: it names the daemon it came from
    return words[3:]


@pytest.fixture(scope="module")
def sweep(daemon: DaemonProcess) -> int:
    """2 samplers x 2 step counts = 4 images, the second sampler with its Karras schedule."""
    created = ctl(daemon, "--json", "sweep", "--prompt", "a fox", "--sampler", "Euler", "--sampler",
                  "DPM++ 2M Karras", "--steps", "2,3", "--seed", "5", *SMALL, "--watch")  # fmt: skip
    assert created.exit_code == 0, created.output
    return int(json.loads(created.stdout)["experiment"]["id"])


def test_images_list_is_newest_first_and_says_how_to_page(daemon: DaemonProcess, sweep: int) -> None:
    first = ctl(daemon, "--json", "images", "list", "--experiment", str(sweep), "--limit", "3")
    page = json.loads(first.stdout)
    ids = [image["id"] for image in page["images"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 3 and page["has_more"] is True

    shown = ctl(daemon, "images", "list", "--experiment", str(sweep), "--limit", "3")
    assert shown.exit_code == 0
    assert [int(line.split()[0]) for line in shown.stdout.splitlines()[1:]] == ids
    follow = hint_args(daemon, shown, "images")
    assert follow == ["images", "list", "--experiment", str(sweep), "--limit", "3", "--before", str(ids[-1])]
    rest = ctl(daemon, "--json", *follow)
    last = json.loads(rest.stdout)
    assert len(last["images"]) == 1 and last["images"][0]["id"] < ids[-1] and last["has_more"] is False
    assert "more images" not in ctl(daemon, *follow).stderr  # the last page says nothing more

    oldest = ctl(daemon, "images", "list", "--experiment", str(sweep), "--limit", "2", "--oldest-first")
    ascending = [int(line.split()[0]) for line in oldest.stdout.splitlines()[1:]]
    assert ascending == sorted([*ids, last["images"][0]["id"]])[:2]
    assert hint_args(daemon, oldest, "images")[-3:] == ["--oldest-first", "--after", str(ascending[-1])]


def test_experiments_list_says_how_to_page(daemon: DaemonProcess, sweep: int) -> None:
    other = ctl(daemon, "--json", "generate", "a cat", "--steps", "2", *SMALL)
    newest = int(json.loads(other.stdout)["experiment"]["id"])
    shown = ctl(daemon, "experiments", "list", "--limit", "1")
    assert shown.stdout.splitlines()[1].split()[0] == str(newest)  # newest first
    follow = hint_args(daemon, shown, "experiments")
    assert follow == ["experiments", "list", "--limit", "1", "--offset", "1"]
    assert ctl(daemon, *follow).stdout.splitlines()[1].split()[0] == str(max(sweep, newest - 1))

    jobs = ctl(daemon, "experiments", "show", str(sweep), "--jobs-limit", "3")
    assert hint_args(daemon, jobs, r"jobs \(showing 1-3 of 4\)") == [
        "experiments", "show", str(sweep), "--jobs-limit", "3", "--jobs-offset", "3",
    ]  # fmt: skip
    last = ctl(daemon, "experiments", "show", str(sweep), "--jobs-limit", "3", "--jobs-offset", "3")
    assert "more jobs" not in last.stderr
    job_rows = [line.split() for line in last.stdout.splitlines() if re.match(r"\d+\s+\d+\s", line)]
    assert [row[1] for row in job_rows] == ["3"]  # the idx column: only the fourth cell


def queue_idle(daemon: DaemonProcess, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queue = json.loads(ctl(daemon, "--json", "queue", "list").stdout)
        if not queue["running"] and queue["total"] == 0:
            return
        time.sleep(0.2)  # polling interval of a bounded wait for a condition
    raise AssertionError("the queue did not drain")


def test_queue_list_says_how_to_page(daemon: DaemonProcess) -> None:
    queue_idle(daemon)  # earlier tests' work is done: only this test's jobs are listed
    assert ctl(daemon, "queue", "pause").exit_code == 0
    try:
        created = ctl(daemon, "--json", "sweep", "--prompt", "an owl", "--seed", "1-5", "--steps", "2", *SMALL)
        experiment_id = json.loads(created.stdout)["experiment"]["id"]
        shown = ctl(daemon, "queue", "list", "--limit", "2")
        assert "queue paused: 0 running, 5 queued" in shown.stdout
        assert hint_args(daemon, shown, r"queued jobs \(showing 1-2 of 5\)") == [
            "queue", "list", "--limit", "2", "--offset", "2",
        ]  # fmt: skip
        assert "more queued jobs" not in ctl(daemon, "queue", "list", "--limit", "2", "--offset", "3").stderr
    finally:
        ctl(daemon, "experiments", "cancel", str(experiment_id))
        assert ctl(daemon, "queue", "resume").exit_code == 0


def test_fetched_files_name_experiment_index_and_axis_values(daemon: DaemonProcess, sweep: int, tmp_path: Path) -> None:
    fetched = ctl(daemon, "images", "fetch", "--experiment", str(sweep), "--out", str(tmp_path))
    assert fetched.exit_code == 0, fetched.output
    # Cell order: first axis (sampler) outermost, steps innermost; the Karras schedule is part of the name.
    expected = {f"e{sweep}-0000-Euler-steps2.png", f"e{sweep}-0001-Euler-steps3.png",
                f"e{sweep}-0002-DPM++_2M_Karras-steps2.png", f"e{sweep}-0003-DPM++_2M_Karras-steps3.png"}  # fmt: skip
    assert {path.name for path in tmp_path.iterdir()} == expected
    listed = json.loads(ctl(daemon, "--json", "images", "list", "--experiment", str(sweep)).stdout)["images"]
    by_name = {f"e{sweep}-{i:04d}": image for i, image in enumerate(sorted(listed, key=lambda im: im["job_id"]))}
    for path in tmp_path.iterdir():
        image = by_name[path.name[: len(f"e{sweep}-0000")]]
        assert path.stat().st_size == image["size_bytes"]  # the right image behind each name
        steps = int(re.search(r"steps(\d+)", path.name).group(1))  # type: ignore[union-attr]
        assert image["params"]["steps"] == steps


def test_grid_never_overwrites_without_force(daemon: DaemonProcess, sweep: int, tmp_path: Path) -> None:
    made = ctl(daemon, "grid", str(sweep), "--x", "sampler", "--y", "steps", "--out", str(tmp_path))
    assert made.exit_code == 0, made.output
    (path,) = tmp_path.iterdir()
    path.write_bytes(b"my own notes, not a grid")  # what a user might have put there since

    refused = ctl(daemon, "grid", str(sweep), "--x", "steps", "--y", "sampler", "--out", str(tmp_path))
    assert refused.exit_code == 1
    assert f"error: {path} already exists; pass --force to overwrite" in refused.stderr
    assert path.read_bytes() == b"my own notes, not a grid" and list(tmp_path.iterdir()) == [path]

    forced = ctl(daemon, "grid", str(sweep), "--x", "steps", "--y", "sampler", "--out", str(tmp_path), "--force")
    assert forced.exit_code == 0, forced.output
    assert path.read_bytes().startswith(b"\x89PNG")


def test_unknown_sampler_on_the_command_line(daemon: DaemonProcess) -> None:
    before = ctl(daemon, "--json", "experiments", "list").stdout
    result = ctl(daemon, "generate", "a fox", "--sampler", "DPM++2M", *SMALL)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: unknown sampler 'DPM++2M' — did you mean 'DPM++ 2M'? (cauldronctl samplers lists them)\n"
    )
    assert ctl(daemon, "--json", "experiments", "list").stdout == before  # nothing was queued
