"""cauldronctl's experiment commands (sweep, convergence, cfg, grid, analyze, export): option parsing and
the requests they make, offline."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import click
import pytest
from click.testing import CliRunner

from cauldron_client.cli import cli
from cauldron_client.client import Client
from cauldron_client.commands.analysis import (
    export_text,
    format_analysis,
    grid_file_name,
    grid_request,
    parse_fixed,
    plot_file_name,
    save_file,
)
from cauldron_client.commands.experiments import cfg_experiment, convergence_experiment
from cauldron_client.commands.generate import (
    is_value_string,
    merge_values,
    option_values,
    parse_axis_option,
    sweep_experiment,
    sweep_params,
)
from cauldron_client.commands.run_file import created_line, format_plan, resolved_axes
from cauldron_client.errors import CauldronError, RpcError, Unauthorized

CLIENTS_DIR = Path(__file__).resolve().parents[1]


# -- experiment commands: option conversion ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10,20,30", [10, 20, 30]),
        ("-1", [-1]),  # a negative seed, not a range
        ("1, -1", [1, -1]),
        ("10-30", "10-30"),
        ("10-30 [3]", "10-30 [3]"),
        (" 1-5 (+2) ", "1-5 (+2)"),
        ("10-30:5", "10-30:5"),
        ("1, 5-7, 10", "1, 5-7, 10"),
        ("-5--1", "-5--1"),
    ],
)
def test_number_options_take_lists_or_pass_ranges_through(text: str, expected: object) -> None:
    assert option_values(text, int) == expected
    assert is_value_string(text) == isinstance(expected, str)


def test_float_ranges_and_bad_lists() -> None:
    assert option_values("3.0-12.0 [4]", float) == "3.0-12.0 [4]"
    assert option_values("5,7.5", float) == [5.0, 7.5]
    with pytest.raises(ValueError, match="'ten' is not an integer"):
        option_values("10,ten", int)


def test_repeated_options_merge_into_a_list_or_one_value_string() -> None:
    assert merge_values([[10, 20], [30]]) == [10, 20, 30]
    assert merge_values([]) == []
    assert merge_values(["10-30 [3]", [40, 50]]) == "10-30 [3], 40, 50"


def test_axis_option() -> None:
    assert parse_axis_option('prompt_sr="cat,dog"') == ("prompt_sr", '"cat,dog"')
    assert parse_axis_option("size = 512x512,512x768") == ("size", "512x512,512x768")
    for bad in ("size", "=1,2", "9x=1", "size="):
        with pytest.raises(ValueError):
            parse_axis_option(bad)


def test_sweep_params_mix_lists_value_strings_and_free_axes() -> None:
    base, axes = sweep_params(
        {"prompt": ["a cat"], "seed": [1, 2], "steps": "10-30 [3]", "sampler": ["Euler"]},
        [("prompt_sr", "cat,dog"), ("size", "64x64,128x64")],
        {"negative_prompt": "blurry"},
    )
    assert base == {"prompt": "a cat", "sampler": "Euler", "negative_prompt": "blurry"}
    assert list(axes.items()) == [
        ("steps", "10-30 [3]"),  # AXIS_ORDER first, however the options were given
        ("seed", [1, 2]),
        ("prompt_sr", "cat,dog"),
        ("size", "64x64,128x64"),
    ]
    with pytest.raises(ValueError, match="'steps' is given twice"):
        sweep_params({"steps": [1, 2]}, [("steps", "3,4")])
    with pytest.raises(ValueError, match="'negative_prompt' is both fixed and swept"):
        sweep_params({}, [("negative_prompt", "a,b")], {"negative_prompt": "x"})


def test_sweep_command_options_become_an_experiment() -> None:
    spec = sweep_experiment(
        prompts=["p"], samplers=["Euler", "DPM++ 2M"], steps=["10-30 [3]"], seed=[[1], [2]], size=(64, 64),
        axis_options=[("prompt_sr", "p,q")], name="n", priority=2,
    )  # fmt: skip
    assert spec.method == "experiments.create"
    assert spec.request() == {
        "kind": "sweep",
        "name": "n",
        "priority": 2,
        "base": {"prompt": "p", "width": 64, "height": 64},
        "axes": {"sampler": ["Euler", "DPM++ 2M"], "steps": "10-30 [3]", "seed": [1, 2], "prompt_sr": "p,q"},
    }
    assert sweep_experiment(prompts=["p"]).request() == {"kind": "sweep", "base": {"prompt": "p"}}
    with pytest.raises(click.UsageError, match="--axis size"):
        sweep_experiment(prompts=["p"], size=(64, 64), axis_options=[("size", "64x64,128x128")])


def test_convergence_and_cfg_commands_become_experiments() -> None:
    spec = convergence_experiment(
        prompts=["a, b"], models=["tiny-sd"], samplers=["Euler", "UniPC"], steps=["4-16 [4]"], seeds=[],
        base={"width": 64, "height": None, "cfg_scale": 5.0}, name=None, priority=None,
    )  # fmt: skip
    assert (spec.method, spec.request()) == (
        "experiments.convergence",
        {
            "base": {"width": 64, "cfg_scale": 5.0},
            "prompts": ["a, b"],
            "models": ["tiny-sd"],
            "samplers": ["Euler", "UniPC"],
            "steps": "4-16 [4]",  # no seeds: the daemon's default (-1, random) applies
        },
    )
    cfg_spec = cfg_experiment(7, [[3.0, 7.5], "9-12 [2]"], priority=1)
    assert (cfg_spec.method, cfg_spec.request()) == (
        "experiments.cfg",
        {"image_id": 7, "cfg": "3.0, 7.5, 9-12 [2]", "priority": 1},
    )


def test_grid_options() -> None:
    assert parse_fixed("seed=1") == ("seed", 1)
    assert parse_fixed("cfg_scale = 7.5") == ("cfg_scale", 7.5)
    assert parse_fixed("sampler=DPM++ 2M") == ("sampler", "DPM++ 2M")
    assert parse_fixed("size=512x768") == ("size", "512x768")
    with pytest.raises(ValueError, match="AXIS=VALUE"):
        parse_fixed("seed")
    assert grid_request(3, "sampler", "steps", "seed", [("cfg_scale", 7.0)], None) == {
        "experiment_id": 3, "x": "sampler", "y": "steps", "z": "seed", "fixed": {"cfg_scale": 7.0},
    }  # fmt: skip
    assert grid_request(3, "sampler") == {"experiment_id": 3, "x": "sampler"}
    with pytest.raises(ValueError, match="different axes"):
        grid_request(3, "seed", "seed")
    with pytest.raises(ValueError, match="given twice"):
        grid_request(3, "sampler", fixed=[("seed", 1), ("seed", 2)])
    assert grid_file_name(3, 2) == "experiment-3-grid-2.png"
    assert plot_file_name(3) == "experiment-3-convergence.png"


@pytest.mark.parametrize(
    "args",
    [
        ["grid", "3", "--x", "seed", "--fix", "seed=1"],
        ["grid", "3", "--x", "seed", "--fix", "nothing"],
        ["sweep", "--prompt", "p", "--axis", "noequals"],
        ["sweep", "--prompt", "p", "--steps", "1,2", "--axis", "steps=3,4"],
        ["analyze", "3", "--plot", "x.png", "--no-plot"],
        ["convergence", "--prompt", "p", "--model", "m", "--sampler", "s"],  # --steps is required
    ],
)
def test_contradictory_options_fail_before_connecting(args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["--url", "ws://127.0.0.1:9/rpc", "--token", "t", *args])
    assert result.exit_code == 2, result.output
    assert "cannot reach" not in result.output


# -- experiment commands: output -----------------------------------------------------------------------------


def test_plan_output() -> None:
    plan = {
        "cells": 24,
        "axes": [{"name": "sampler", "values": ["Euler", "DPM++ 2M, x"]}, {"name": "steps", "values": list(range(20))}],
        "model_loads": 1,
        "batches": 6,
        "max_batch_size": 4,
        "estimated_seconds": 125.0,
        "estimate_basis": "median of 9 recent images",
    }
    assert format_plan(plan).splitlines() == [
        "24 cell(s)",
        "axes:",
        "  sampler  (2) Euler, 'DPM++ 2M, x'",
        "  steps    (20) 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, … (8 more)",
        "model loads: 1",
        "batches: 6 (at most 4 images each)",
        "estimated duration: 0:02:05 (median of 9 recent images)",
    ]
    unknown = format_plan({"cells": 1, "axes": [], "estimated_seconds": None, "estimate_basis": "no images yet"})
    assert "estimated duration: unknown (no images yet)" in unknown


def test_created_line_prefers_the_daemons_resolved_axes() -> None:
    resolved = {"resolved_axes": [{"name": "steps", "values": [10, 20, 30]}, {"name": "seed", "values": [1, 2]}]}
    experiment = {"id": 4, "counts": {"total": 6}, "spec": resolved}
    assert created_line(experiment, {"steps": "10-30 [3]"}) == "experiment 4: 6 cell(s) (3 steps x 2 seed)"
    bare = {"id": 5, "counts": {"total": 4}}
    line = created_line(bare, {"steps": "10-30:2", "seed": [1, 2]})
    assert line == "experiment 5: 4 cell(s) (steps '10-30:2' x 2 seed)"
    assert created_line({"id": 6, "counts": {"total": 1}}, None, [9]) == "experiment 6: 1 cell(s), job id(s) 9"
    assert resolved_axes({"axes": {"seed": [1, 2]}}) == [("seed", [1, 2])]
    assert resolved_axes({"axes": {"seed": "1-2"}}) == []


def test_analysis_table() -> None:
    spread = {"count": 3, "median": 18.0, "min": 16.0, "max": 20.0, "q1": 17.0, "q3": 19.0, "iqr": 2.0}
    figures = {"median": 0.4213, "mean": 0.43}
    result = {
        "convergence": {
            "metric": "mad",
            "threshold": 0.02,
            "series": [],
            "by_sampler": [
                {"key": {"sampler": "Euler"}, "series": 4, "converged": 3, "never_converged": 1,
                 "converged_at": spread, "curve": []},
                {"key": {"sampler": "Euler a"}, "series": 2, "converged": 0, "never_converged": 2,
                 "converged_at": None, "curve": []},
            ],
        },
        "timing": {
            "overall": {"key": {}, "count": 12, "seconds_per_image": figures, "seconds_per_step": {"median": 0.02106}},
            "by_sampler": [{"key": {"sampler": "Euler"}, "count": 12, "seconds_per_image": figures,
                            "seconds_per_step": {"median": 0.02106, "mean": 0.021}}],
            "by_model": [{"key": {"model": "tiny-sd"}, "count": 12, "seconds_per_image": figures,
                          "seconds_per_step": {"median": 0.02106, "mean": 0.021}}],
        },
        "plot": None,
    }  # fmt: skip
    lines = format_analysis(result, "ssim", 0.5).splitlines()
    assert lines[0].startswith("convergence (mad, threshold 0.02): ")  # the daemon's figures win
    assert lines[1].split() == ["SAMPLER", "SERIES", "CONVERGED", "MEDIAN", "SPREAD", "NEVER"]
    assert lines[2].split() == ["Euler", "4", "3", "18", "16–20", "1"]
    assert lines[3].split() == ["Euler", "a", "2", "0", "-", "-", "2"]
    assert lines[4:6] == ["", "timing (medians)"]
    assert [line.split() for line in lines[6:]] == [
        ["GROUP", "IMAGES", "S/IMAGE", "S/STEP"],
        ["sampler", "Euler", "12", "0.421", "0.0211"],
        ["model", "tiny-sd", "12", "0.421", "0.0211"],
        ["all", "images", "12", "0.421", "0.0211"],
    ]
    empty = format_analysis({}, "ssim", 0.1)
    assert "convergence (ssim, threshold 0.1)" in empty and "no series" in empty and "no recorded timings" in empty
    assert export_text("a,b\n") == "a,b\n"
    assert export_text([{"a": 1}]).startswith("[")


# -- fetching files over HTTP --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/grid/abc.png", "/images/x.png", "/grids/../token", "/images/1.png?x=1", "http://evil/grids/a.png",
     "//evil/grids/a.png", "/grids/a.png/../../x", "grids/a.png", "/rpc", ""],
)  # fmt: skip
async def test_fetch_path_refuses_anything_but_images_and_grids(path: str) -> None:
    client = Client("ws://127.0.0.1:9/rpc", "t")
    with pytest.raises(ValueError, match="refusing to fetch"):
        await client.fetch_path(path)


class _Files(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {"/grids/0123abcd.png": b"\x89PNG grid", "/images/5.png": b"\x89PNG five"}

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != "Bearer s3cret":
            self.send_response(401)
            self.end_headers()
            return
        body = self.files.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def file_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{server.server_address[1]}/rpc"
    server.shutdown()
    server.server_close()


async def test_fetch_path_gets_grids_and_images_with_the_token(file_server: str) -> None:
    client = Client(file_server, "s3cret")
    assert await client.fetch_path("/grids/0123abcd.png") == b"\x89PNG grid"
    assert await client.fetch_image(5) == b"\x89PNG five"
    with pytest.raises(RpcError) as missing:
        await client.fetch_path("/grids/ffff.png")
    assert (missing.value.code, missing.value.message) == ("not_found", "/grids/ffff.png not found on the daemon")
    with pytest.raises(RpcError, match="image 6 not found"):
        await client.fetch_image(6)
    with pytest.raises(Unauthorized):
        await Client(file_server, "wrong").fetch_path("/grids/0123abcd.png")


def test_saved_files_create_their_folder_and_unwritable_paths_are_one_error(tmp_path: Path) -> None:
    path = save_file(tmp_path / "a" / "b" / "grid.png", b"\x89PNG")
    assert path.read_bytes() == b"\x89PNG"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CauldronError, match=f"cannot write {blocker / 'x.png'}"):
        save_file(blocker / "x.png", b"data")


def test_client_renders_nothing_itself() -> None:
    # Grids and plots are drawn by the daemon: the client must import without numpy, matplotlib or Pillow.
    code = (
        "import sys\n"
        "for name in ('numpy', 'matplotlib', 'PIL', 'torch'): sys.modules[name] = None\n"
        "import cauldron_client.cli, cauldron_client.experiment_file, cauldron_client.commands.analysis\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
