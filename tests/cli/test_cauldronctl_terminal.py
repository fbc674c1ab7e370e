"""cauldronctl as a person sees it: the real command in a real pseudo-terminal (60 and 80 columns) or a pipe,
against a real cauldrond on the tiny model; Ctrl-C is a real SIGINT to the real process."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client

from tests.cli.terminal import Terminal, newlines, visible_lines
from tests.daemon.process import DaemonProcess
from tests.waiting import until

pytestmark = pytest.mark.slow

CELLS = ["--prompt", "a fox", "--steps", "2", "--seed", "1,2,3,4", "--size", "64x64"]


@pytest.fixture(scope="module")
def daemon(models_dir: Path) -> Iterator[DaemonProcess]:
    # A short data path keeps the printed image paths inside 60 columns, so every line can be held to the width.
    with tempfile.TemporaryDirectory(prefix="ct", dir="/tmp") as root:
        process = DaemonProcess(Path(root) / "d", models_dir)
        process.start()
        yield process
        assert process.terminate() == 0


def global_args(daemon: DaemonProcess) -> list[str]:
    return ["--url", daemon.url, "--token", daemon.token]


async def experiment_state(daemon: DaemonProcess, experiment_id: int) -> dict[str, Any]:
    async with Client(daemon.url, token=daemon.token) as client:
        result: dict[str, Any] = (await client.call("experiments.get", experiment_id=experiment_id))["experiment"]
        return result


@pytest.mark.parametrize("columns", [60, 80])
def test_watch_fits_the_terminal_and_redraws_in_place(daemon: DaemonProcess, columns: int) -> None:
    term = Terminal([*global_args(daemon), "sweep", *CELLS, "--watch"], columns)
    assert term.finish() == 0, term.text
    text = term.text
    too_wide = [line for line in visible_lines(text) if len(line) > columns]
    assert not too_wide, f"lines wider than {columns} columns: {too_wide}"
    experiment_id = int(re.search(r"experiment (\d+): 4 cell", text).group(1))  # type: ignore[union-attr]
    assert "4/4 cells" in text and f"experiment {experiment_id} finished: 4 done" in text
    # The bar is redrawn in place (carriage return, erase line) many times but scrolls the terminal only for
    # what stays: the created line, the final bar, the summary, 4 image paths and the folder line.
    assert text.count("\r\x1b[2K") >= 2
    assert newlines(text) == 1 + 1 + 1 + 4 + 1, text
    assert len([line for line in visible_lines(text) if re.fullmatch(r"/\S+\.png", line)]) == 4


def test_watch_into_a_pipe_prints_plain_lines(daemon: DaemonProcess) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    proc = subprocess.run(
        [sys.executable, "-m", "cauldron_client", *global_args(daemon), "sweep", *CELLS, "--watch"],
        capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert re.fullmatch(r"[0-4]/4 cells \| .*", lines[0]), lines
    assert re.fullmatch(r"experiment \d+ finished: 4 done", lines[-3]), lines
    assert lines[-2].startswith("4/4 cells | ")
    assert lines[-1].startswith("4 image(s) in /")
    assert len(proc.stdout.splitlines()) == 1 + 4  # the created line, then one path per image


def test_ctrl_c_stops_watching_not_the_experiment(daemon: DaemonProcess) -> None:
    # Far more cells than can finish before the interrupt on any machine; the test cancels them at the end.
    # 40 steps a cell, 200 cells: a few minutes of work even on a fast idle machine (2 steps x 40 cells finished
    # in 2 s, before the interrupt arrived), while one batch still finishes within the wait below on a slow one.
    slow = ["--prompt", "an owl", "--steps", "40", "--seed", "1-200", "--size", "64x64"]
    term = Terminal([*global_args(daemon), "sweep", *slow, "--watch"], 80)
    try:
        experiment_id = int(term.wait_for(r"experiment (\d+): 200 cell").group(1))
        term.wait_for(r"/200 cells")  # the bar is up: the watch loop is running
        term.interrupt()
        code = term.finish(timeout=60)
    finally:
        term.close()
    assert code == 130, term.text
    text = " ".join(visible_lines(term.text))
    assert "Aborted!" not in text
    assert f"stopped watching; experiment {experiment_id} keeps running" in text
    assert f"watch {experiment_id}" in text and f"experiments cancel {experiment_id}" in text

    # The experiment goes on without a watcher: its cells keep finishing.
    after_interrupt = asyncio.run(experiment_state(daemon, experiment_id))
    assert after_interrupt["status"] in ("queued", "running")
    done_then = after_interrupt["counts"]["done"]

    async def more_done() -> bool:
        return bool((await experiment_state(daemon, experiment_id))["counts"]["done"] > done_then)

    asyncio.run(until(more_done, timeout=240, interval=0.5))

    # Cancelling it is the user's explicit choice; watching it afterwards says so and exits 3.
    cancel = subprocess.run(
        [sys.executable, "-m", "cauldron_client", *global_args(daemon), "experiments", "cancel", str(experiment_id)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cancel.returncode == 0, cancel.stderr

    async def settled() -> bool:
        return bool((await experiment_state(daemon, experiment_id))["status"] == "cancelled")

    asyncio.run(until(settled, timeout=120, interval=0.2))
    watch = Terminal([*global_args(daemon), "watch", str(experiment_id)], 80)
    assert watch.finish(timeout=60) == 3, watch.text
    assert re.fullmatch(rf"experiment {experiment_id} was cancelled: \d+ done, \d+ cancelled\r\n", watch.text)


def test_watch_of_a_finished_experiment_says_so_and_exits_zero(daemon: DaemonProcess) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "cauldron_client", *global_args(daemon), "generate", "a cat", "--steps", "2",
         "--size", "64x64", "--watch"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    experiment_id = int(re.search(r"experiment (\d+)", created.stdout).group(1))  # type: ignore[union-attr]
    watch = Terminal([*global_args(daemon), "watch", str(experiment_id)], 60)
    assert watch.finish(timeout=60) == 0, watch.text
    assert f"experiment {experiment_id} (a cat) finished: 1 done" in watch.text
    assert newlines(watch.text) == 1  # no bar for something already over


def test_tables_fit_the_terminal_and_stay_whole_in_a_pipe(daemon: DaemonProcess) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "cauldron_client", *global_args(daemon), "generate", "a wide table", "--steps", "2",
         "--size", "64x64", "--watch"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    # Its row (a path of about 45 characters after six other columns) is wider than 80 columns: the short columns
    # keep their width, the path folds.
    term = Terminal([*global_args(daemon), "images", "list", "--limit", "1"], 80)
    assert term.finish(timeout=60) == 0, term.text
    # The table's lines; a "more images: <command>" hint after it is a command to copy, kept whole.
    lines = [line for line in visible_lines(term.text) if line and not line.startswith("more images: ")]
    assert lines[0].split() == ["ID", "EXPERIMENT", "JOB", "SEED", "TIME", "CREATED", "FILE"]
    assert all(len(line) <= 80 for line in lines), lines
    start = lines[0].index("FILE")
    folded = "".join(line[start:].strip() for line in lines[1:])
    assert re.fullmatch(r"/\S+\.png", folded), lines  # the whole path, in pieces
    piped = subprocess.run(
        [sys.executable, "-m", "cauldron_client", *global_args(daemon), "images", "list", "--limit", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    rows = piped.stdout.splitlines()[1:]
    assert len(rows) == 1 and re.search(r"\s/\S+\.png$", rows[0])  # one line, the path whole
    assert len(rows[0]) > 80 and rows[0].endswith(folded)
    assert len(lines) > 2  # on the terminal the same row needed more than one line
