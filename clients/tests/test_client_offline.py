"""Client tests that need no daemon: discovery, CLI surface, option conversion, errors, packaging."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import platformdirs
import pytest
from click.testing import CliRunner

from cauldron_client.cli import cli, error_line
from cauldron_client.commands._common import counts_line, fmt_time, image_folder, table
from cauldron_client.commands.images import write_atomically
from cauldron_client.commands.params import cell_count, parse_size, split_csv, sweep_spec
from cauldron_client.connection import (
    DEFAULT_URL,
    http_base_url,
    normalize_url,
    resolve_endpoint,
    resolve_token,
    resolve_url,
    token_path,
)
from cauldron_client.errors import ConfigError, ConnectionFailed, RpcError
from cauldron_client.progress import EXIT_CANCELLED, EXIT_DONE, EXIT_FAILED, Progress, format_duration
from cauldron_client.watching import LineDisplay

CLIENTS_DIR = Path(__file__).resolve().parents[1]


# -- URL discovery -------------------------------------------------------------------------------------------


def test_url_defaults_to_local_daemon() -> None:
    assert resolve_url(None, {}) == DEFAULT_URL == "ws://127.0.0.1:7860/rpc"


def test_url_argument_beats_environment() -> None:
    env = {"CAULDRON_URL": "ws://envhost:1/rpc"}
    assert resolve_url("ws://arghost:2/rpc", env) == "ws://arghost:2/rpc"
    assert resolve_url(None, env) == "ws://envhost:1/rpc"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://192.168.1.5:7860", "ws://192.168.1.5:7860/rpc"),
        ("http://192.168.1.5:7860/", "ws://192.168.1.5:7860/rpc"),
        ("https://box.local:8443/index.html", "wss://box.local:8443/rpc"),
        ("ws://127.0.0.1:7860", "ws://127.0.0.1:7860/rpc"),
        ("wss://box.local:8443/rpc", "wss://box.local:8443/rpc"),
        ("ws://127.0.0.1:9/custom", "ws://127.0.0.1:9/custom"),
        ("box.local:7860", "ws://box.local:7860/rpc"),
        ("HTTP://[::1]:7860", "ws://[::1]:7860/rpc"),
    ],
)
def test_url_normalisation(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


@pytest.mark.parametrize("bad", ["ftp://host:1", "", "http://:7860", "ws://host:notaport/rpc"])
def test_bad_urls_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(ConfigError):
        normalize_url(bad)


def test_http_base_for_images() -> None:
    assert http_base_url("ws://127.0.0.1:7860/rpc") == "http://127.0.0.1:7860"
    assert http_base_url("wss://box.local:8443/rpc") == "https://box.local:8443"


# -- token discovery -----------------------------------------------------------------------------------------


def test_token_argument_beats_environment_beats_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    env = {"CAULDRON_DATA_DIR": str(tmp_path), "CAULDRON_TOKEN": "from-env"}
    assert resolve_token("from-arg", env) == "from-arg"
    assert resolve_token(None, env) == "from-env"
    del env["CAULDRON_TOKEN"]
    assert resolve_token(None, env) == "from-file"  # the trailing newline is not part of the token


def test_token_file_defaults_to_the_daemons_data_dir() -> None:
    expected = Path(platformdirs.user_data_dir("shadow-cauldron", appauthor=False)) / "token"
    assert token_path({}) == expected


def test_missing_token_file_names_the_path(tmp_path: Path) -> None:
    env = {"CAULDRON_DATA_DIR": str(tmp_path / "nowhere")}
    with pytest.raises(ConfigError, match=str(tmp_path / "nowhere" / "token")):
        resolve_token(None, env)


def test_empty_token_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("  \n")
    with pytest.raises(ConfigError, match="empty"):
        resolve_token(None, {"CAULDRON_DATA_DIR": str(tmp_path)})


def test_endpoint_combines_both(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t0k")
    endpoint = resolve_endpoint("http://10.0.0.2:7860", None, {"CAULDRON_DATA_DIR": str(tmp_path)})
    assert (endpoint.url, endpoint.token, endpoint.http_url) == (
        "ws://10.0.0.2:7860/rpc",
        "t0k",
        "http://10.0.0.2:7860",
    )


# -- CLI surface ---------------------------------------------------------------------------------------------


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            paths += _all_commands(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


EXPECTED_COMMANDS = {
    ("status",), ("models",), ("samplers",), ("generate",), ("sweep",), ("watch",),
    ("experiments", "list"), ("experiments", "show"), ("experiments", "cancel"), ("experiments", "priority"),
    ("queue", "list"), ("queue", "pause"), ("queue", "resume"),
    ("images", "list"), ("images", "fetch"), ("images", "rerun"),
    ("run",), ("convergence",), ("cfg",), ("grid",), ("export",), ("analyze",),
}  # fmt: skip


def test_every_documented_command_exists() -> None:
    assert set(_all_commands(cli)) >= EXPECTED_COMMANDS


@pytest.mark.parametrize("path", sorted(_all_commands(cli)), ids=lambda p: " ".join(p) or "cauldronctl")
def test_help_for_every_command(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert "Traceback" not in result.output
    # Beyond click's own usage line: the command says what it does (its help text, however click wraps it).
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    words = (command.help or "").split()
    assert words, f"{' '.join(path) or 'cauldronctl'} has no help text"
    assert " ".join(words[:6]) in " ".join(result.output.split())


# -- sweep conversion ----------------------------------------------------------------------------------------


def test_single_values_go_to_base_and_several_become_axes() -> None:
    base, axes = sweep_spec(
        {
            "prompt": ["a cat"],
            "sampler": ["Euler a", "DPM++ 2M, Karras-ish"],
            "steps": [10, 20, 30],
            "cfg_scale": [7.5],
            "seed": [1, 2],
        },
        {"negative_prompt": "blurry", "clip_skip": None},
    )
    assert base == {"prompt": "a cat", "cfg_scale": 7.5, "negative_prompt": "blurry"}
    assert axes == {"sampler": ["Euler a", "DPM++ 2M, Karras-ish"], "steps": [10, 20, 30], "seed": [1, 2]}
    assert list(axes) == ["sampler", "steps", "seed"]  # fixed order: first axis outermost
    assert cell_count(axes) == 12


def test_repeated_values_are_one_cell() -> None:
    base, axes = sweep_spec({"prompt": ["p"], "seed": [1, 2, 1], "steps": [20, 20]})
    assert axes == {"seed": [1, 2]}
    assert base == {"prompt": "p", "steps": 20}


def test_model_axis_is_outermost_whatever_the_input_order() -> None:
    _, axes = sweep_spec({"seed": [1, 2], "model": ["a", "b"], "prompt": ["x", "y"]})
    assert list(axes) == ["model", "prompt", "seed"]


def test_no_axes_is_one_cell() -> None:
    base, axes = sweep_spec({"prompt": ["p"]})
    assert (base, axes, cell_count(axes)) == ({"prompt": "p"}, {}, 1)


def test_csv_and_size_parsing() -> None:
    assert split_csv("10, 20,30", int) == [10, 20, 30]
    assert split_csv("5,7.5", float) == [5.0, 7.5]
    assert parse_size("512x768") == (512, 768)
    with pytest.raises(ValueError, match="not an integer"):
        split_csv("10,x", int)
    with pytest.raises(ValueError, match="empty item"):
        split_csv("10,,20", int)
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size("512")


def test_sweep_rejects_bad_numbers_before_connecting() -> None:
    result = CliRunner().invoke(
        cli, ["--url", "ws://127.0.0.1:9/rpc", "--token", "t", "sweep", "--prompt", "p", "--steps", "10,ten"]
    )
    assert result.exit_code == 2
    assert "'ten' is not an integer" in result.output


def test_size_and_width_together_is_a_usage_error() -> None:
    args = ["--token", "t", "generate", "p", "--size", "512x512", "--width", "256"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "--size or --width/--height" in result.output


# -- failures are one line, never a traceback ----------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_one_clear_line() -> None:
    port = _closed_port()
    result = CliRunner().invoke(cli, ["--url", f"ws://127.0.0.1:{port}/rpc", "--token", "t", "status"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: cannot reach cauldrond at ws://127.0.0.1:{port}/rpc: connection refused")
    assert "Traceback" not in result.output


def test_connection_refused_in_a_real_process_has_no_traceback() -> None:
    port = _closed_port()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cauldron_client",
            "--url",
            f"127.0.0.1:{port}",
            "--token",
            "t",
            "queue",
            "list",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"error: cannot reach cauldrond at ws://127.0.0.1:{port}/rpc: ")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_token_is_one_line_naming_the_file(tmp_path: Path) -> None:
    result = CliRunner(env={"CAULDRON_DATA_DIR": str(tmp_path), "CAULDRON_TOKEN": None}).invoke(cli, ["status"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: no token file at {tmp_path / 'token'}")


_UNREACHABLE = "cannot reach cauldrond at ws://h:1/rpc: timed out"


@pytest.mark.parametrize(
    ("exc", "line", "code"),
    [
        (RpcError("not_found", "experiment 9 not found"), "error: not_found: experiment 9 not found", 2),
        (RpcError("invalid_params", "steps: big\n  more"), "error: invalid_params: steps: big more", 2),
        (RpcError("provider_error", "unknown model 'x'"), "error: provider_error: unknown model 'x'", 1),
        (ConnectionFailed(_UNREACHABLE), f"error: {_UNREACHABLE}", 1),
    ],
)  # fmt: skip
def test_error_lines_and_exit_codes(exc: RpcError | ConnectionFailed, line: str, code: int) -> None:
    assert error_line(exc) == (line, code)


# -- output helpers ------------------------------------------------------------------------------------------


def test_table_aligns_columns() -> None:
    text = table(["id", "name"], [(1, "a"), (22, None), (3, 0.5)])
    assert text.splitlines() == ["ID  NAME", "1   a", "22  -", "3   0.5"]


def test_table_on_a_narrow_terminal_folds_long_cells_and_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import cauldron_client.commands._common as common

    monkeypatch.setattr(common.sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(common, "terminal_width", lambda: 40)
    path = "/data/images/exp-000003/00000-1234567890.png"
    lines = table(["id", "seed", "file"], [(12, 1234567890, path)]).splitlines()
    assert max(len(line) for line in lines) <= 40 and len(lines) > 2
    start = lines[0].index("FILE")
    assert "".join(line[start:] for line in lines[1:]) == path  # folded, every character still there
    assert lines[0].split() == ["ID", "SEED", "FILE"]


def test_image_folder_of_daemon_paths() -> None:
    assert image_folder(["/d/images/3/1.png", "/d/images/3/2.png"]) == "/d/images/3"
    assert image_folder(["/d/images/3/1.png", "/d/images/4/2.png"]) == "/d/images"
    assert image_folder([]) is None


def test_fetched_images_are_written_whole(tmp_path: Path) -> None:
    path = write_atomically(tmp_path / "7.png", b"\x89PNG data")
    assert path.read_bytes() == b"\x89PNG data"
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_counts_line_and_times() -> None:
    assert (
        counts_line({"total": 4, "done": 3, "failed": 1})
        == "4 cells: 3 done, 0 running, 0 queued, 1 failed, 0 cancelled"
    )
    assert fmt_time("2024-05-01T10:00:00") == "2024-05-01 10:00:00"
    assert fmt_time(None) == "-"


# -- packaging: the client never needs torch -----------------------------------------------------------------


def test_client_imports_with_torch_and_diffusers_absent() -> None:
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['diffusers'] = None; "
        "import cauldron_client, cauldron_client.cli, cauldron_client.progress, cauldron_client.watching; "
        "assert 'cauldrond' not in sys.modules, 'the client imported the daemon package'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_torch_is_not_a_declared_dependency() -> None:
    project = tomllib.loads((CLIENTS_DIR / "pyproject.toml").read_text())["project"]
    names = [dep.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower()
             for dep in project["dependencies"]]  # fmt: skip
    assert {"msgpack", "websockets", "click", "platformdirs", "rich"} <= set(names)
    assert not {"torch", "diffusers", "transformers", "accelerate", "cauldrond"} & set(names)
    assert project["scripts"]["cauldronctl"] == "cauldron_client.cli:main"


# -- watch progress state ------------------------------------------------------------------------------------


def _experiment(eid: int, status: str, done: int, total: int, failed: int = 0) -> dict[str, object]:
    counts = {"total": total, "done": done, "failed": failed, "queued": total - done - failed, "cancelled": 0}
    return {"id": eid, "name": f"e{eid}", "status": status, "counts": counts}


def test_progress_counts_come_from_snapshots_and_events_only_mark_refreshes() -> None:
    now = [100.0]
    progress = Progress([1, 2], clock=lambda: now[0])
    progress.update_experiment(_experiment(1, "running", 2, 10))
    progress.update_experiment(_experiment(2, "queued", 0, 10))
    progress.update_experiment(_experiment(99, "running", 5, 5))  # not watched: ignored
    progress.mark_baseline()
    assert (progress.settled, progress.total, progress.rate(), progress.eta_s()) == (2, 20, None, None)

    assert progress.apply_event({"type": "job.started", "job_id": 5, "experiment_id": 1, "batch": [5, 6]}) == {1}
    progress_event = {"type": "job.progress", "job_id": 6, "experiment_id": 1, "step": 3, "total": 20}
    assert progress.apply_event(progress_event) == set()
    step = progress.current_step()
    assert step is not None and (step.job_id, step.step, step.total) == (6, 3, 20)
    assert progress.line() == "2/20 cells | step 3/20 | -- img/s | ETA --"
    assert progress.apply_event({"type": "job.done", "job_id": 6, "experiment_id": 1, "image_id": 1}) == {1}
    assert progress.apply_event({"type": "job.done", "job_id": 8, "experiment_id": 7}) == set()
    assert progress.apply_event({"type": "events.dropped", "count": 3}) == {1, 2}
    assert progress.settled == 2  # an event alone never changes the counts

    now[0] = 110.0
    progress.update_experiment(_experiment(1, "running", 6, 10))
    assert progress.rate() == pytest.approx(0.4)  # 4 cells settled since the baseline, in 10 s
    assert progress.eta_s() == pytest.approx(14 / 0.4)
    # 14 cells left at 0.4 cells/s: 35 s
    assert progress.line() == "6/20 cells | 0.40 img/s | ETA 0:00:35"  # job 6 ended; job 5 has no step yet
    assert not progress.all_finished

    progress.update_experiment(_experiment(1, "done", 10, 10))
    progress.update_experiment(_experiment(2, "failed", 9, 10, failed=1))
    assert progress.all_finished and progress.exit_code == EXIT_FAILED
    assert progress.line().startswith("20/20 cells (1 failed) | ")  # no step once everything has finished


def test_all_done_exits_zero() -> None:
    progress = Progress([1])
    progress.update_experiment(_experiment(1, "done", 3, 3))
    assert progress.all_finished and progress.exit_code == EXIT_DONE == 0
    assert progress.experiments[1].summary() == "experiment 1 (e1) finished: 3 done"


def test_a_cancelled_experiment_exits_with_its_own_code_and_says_so() -> None:
    progress = Progress([1, 2])
    progress.update_experiment(_experiment(1, "done", 2, 3, failed=1))
    progress.update_experiment({"id": 2, "name": "", "status": "cancelled",
                                "counts": {"total": 200, "done": 3, "cancelled": 197}})  # fmt: skip
    assert progress.exit_code == EXIT_CANCELLED == 3  # cancelled wins over a failed cell
    assert progress.experiments[2].summary() == "experiment 2 was cancelled: 3 done, 197 cancelled"
    assert progress.experiments[1].summary() == "experiment 1 (e1) finished with failures: 2 done, 1 failed"
    assert len({EXIT_DONE, EXIT_FAILED, EXIT_CANCELLED, 2, 130}) == 5  # 2: usage errors, 130: Ctrl-C


def test_display_off_a_tty_prints_lines_not_redraws() -> None:
    out = io.StringIO()
    display = LineDisplay(out, line_interval_s=0)
    progress = Progress([1], clock=lambda: 5.0)  # no time passes: the rate stays unknown
    progress.update_experiment(_experiment(1, "running", 1, 4))
    progress.mark_baseline()
    display.render(progress)
    display.render(progress)  # unchanged: not printed twice
    progress.update_experiment(_experiment(1, "done", 4, 4))
    display.message("experiment 1 done")
    display.render(progress)
    display.close(progress)  # the final state was just printed: not again
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[:2] == ["1/4 cells | -- img/s | ETA --", "experiment 1 done"]
    assert lines[2:] == ["4/4 cells | -- img/s | ETA --"]
    assert format_duration(3725) == "1:02:05"
