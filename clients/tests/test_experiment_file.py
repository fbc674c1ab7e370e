"""Experiment files (TOML): good files become the right RPC requests, each bad shape is one line naming the key
and the file, and the examples shipped in examples/ all pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cauldron_client.cli import cli
from cauldron_client.experiment_file import (
    ExperimentFileError,
    ExperimentSpec,
    image_base,
    load_experiment,
    parse_experiment,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SWEEP = """
name = "sampler convergence"
priority = 3
[base]
prompt = "a lighthouse at dusk"
width = 128
height = 128
[axes]
sampler = ["Euler a", "DPM++ 2M Karras"]
steps = "10-40 [4]"
seed = [1, 2]
"""

CONVERGENCE = """
kind = "convergence"
prompts = ["a lighthouse, at dusk"]
models = ["tiny-sd"]
samplers = "Euler, DPM++ 2M"
steps = [4, 8, 16]
seeds = "1-3"
[base]
cfg_scale = 6.5
"""


def test_a_sweep_file_becomes_experiments_create() -> None:
    spec = parse_experiment(SWEEP, "sweep.toml")
    assert (spec.kind, spec.method, spec.name, spec.priority) == (
        "sweep",
        "experiments.create",
        "sampler convergence",
        3,
    )
    assert spec.request() == {
        "kind": "sweep",
        "name": "sampler convergence",
        "priority": 3,
        "base": {"prompt": "a lighthouse at dusk", "width": 128, "height": 128},
        "axes": {"sampler": ["Euler a", "DPM++ 2M Karras"], "steps": "10-40 [4]", "seed": [1, 2]},
    }
    assert list(spec.request()["axes"]) == ["sampler", "steps", "seed"]  # the file's order: first is outermost
    assert spec.plan_request() == {**spec.request(), "kind": "sweep"}


def test_kind_defaults_to_sweep_and_cells_are_accepted() -> None:
    spec = parse_experiment('[base]\nprompt = "p"\n[[cells]]\nseed = 1\n[[cells]]\nseed = 2\nsteps = 5\n')
    assert spec.kind == "sweep"
    assert spec.request() == {"kind": "sweep", "base": {"prompt": "p"}, "cells": [{"seed": 1}, {"seed": 2, "steps": 5}]}


def test_a_convergence_file_and_its_plan() -> None:
    spec = parse_experiment(CONVERGENCE, "c.toml")
    assert spec.method == "experiments.convergence"
    assert spec.request() == {
        "base": {"cfg_scale": 6.5},
        "prompts": ["a lighthouse, at dusk"],
        "models": ["tiny-sd"],
        "samplers": "Euler, DPM++ 2M",
        "steps": [4, 8, 16],
        "seeds": "1-3",
    }
    # experiments.plan takes the general form; one-value lists are fixed in base as the daemon does.
    assert spec.plan_request() == {
        "kind": "convergence",
        "base": {"cfg_scale": 6.5, "prompt": "a lighthouse, at dusk", "model": "tiny-sd"},
        "axes": {"sampler": "Euler, DPM++ 2M", "seed": "1-3", "steps": [4, 8, 16]},
    }


def test_a_cfg_file_and_its_plan_from_the_image() -> None:
    spec = parse_experiment('kind = "cfg"\nimage_id = 12\ncfg = "3-12 [4]"\nname = "c"\n', "cfg.toml")
    assert (spec.method, spec.request()) == ("experiments.cfg", {"image_id": 12, "cfg": "3-12 [4]", "name": "c"})
    image = {"id": 12, "seed": 99, "params": {"prompt": "p", "seed": -1, "steps": 5}}
    assert image_base(image) == {"prompt": "p", "seed": 99, "steps": 5}  # the seed actually used
    assert spec.plan_request(image) == {
        "kind": "cfg",
        "name": "c",
        "base": {"prompt": "p", "seed": 99, "steps": 5},
        "axes": {"cfg_scale": "3-12 [4]"},
    }
    with pytest.raises(ValueError, match="needs the image"):
        spec.plan_request()


BAD_FILES = [
    ("x = [", None, "not valid TOML"),
    ('kind = "xyz"\n[base]\nprompt = "p"', "kind", "must be one of 'sweep', 'convergence', 'cfg', got 'xyz'"),
    ("kind = 3\n[base]", "kind", "must be one of"),
    ('colour = "red"\n[base]\nprompt = "p"', "colour", "unknown key (a sweep experiment takes 'name', 'kind'"),
    ('prompts = ["a"]\n[base]', "prompts", "not used by a sweep experiment (it belongs to kind = 'convergence')"),
    ('kind = "cfg"\nimage_id = 1\ncfg = [3]\n[base]', "base", "not used by a cfg experiment"),
    ('[axes]\nseed = [1]', "base", "missing (a sweep experiment needs 'base')"),
    ('kind = "convergence"\nprompts = ["a"]\nmodels = ["m"]\nsamplers = ["s"]', "steps", "missing"),
    ('kind = "cfg"\ncfg = [3]', "image_id", "missing (a cfg experiment needs 'image_id' and 'cfg')"),
    ('name = 5\n[base]', "name", "must be a string, got an integer"),
    ('priority = "high"\n[base]', "priority", "must be an integer, got a string"),
    ("priority = true\n[base]", "priority", "must be an integer, got a boolean"),
    ('base = "p"', "base", "must be a table of generation params ([base]), got a string"),
    ("[base]\nsteps = [10, 20]", "base.steps", "must be a single value; put lists of values under [axes]"),
    ("[base]\nwhen = 2024-01-01", "base.when", "must be a string, number or boolean, got a date/time"),
    ("axes = [1]\n[base]", "axes", "must be a table mapping axis names to values"),
    ("[base]\n[axes]", "axes", "is empty"),
    ("[base]\n[axes]\nsteps = 10", "axes.steps", 'must be a list of values or a value string such as "10-40 [4]"'),
    ("[base]\n[axes]\nsteps = []", "axes.steps", "is an empty list"),
    ('[base]\n[axes]\nsteps = "  "', "axes.steps", "is an empty value string"),
    ("[base]\n[axes]\nsteps = [1, [2]]", "axes.steps[1]", "must be a string, number or boolean, got a list"),
    ("[base]\n[axes.steps]\nx = 1", "axes.steps", "got a table"),
    ("cells = [1]\n[base]", "cells[0]", "must be a table of generation params"),
    ("[base]\n[axes]\nseed = [1]\n[[cells]]\nseed = 2", "cells", "give either [axes] or [[cells]], not both"),
    ('kind = "convergence"\nprompts = "a, b"\nmodels = ["m"]\nsamplers = ["s"]\nsteps = [1]', "prompts",
     "must be a list of strings, got a string"),  # a prompt may hold commas: never a CSV string
    ('kind = "convergence"\nprompts = ["a", ""]\nmodels = ["m"]\nsamplers = ["s"]\nsteps = [1]', "prompts[1]",
     "must be a non-empty string"),
    ('kind = "convergence"\nprompts = ["a"]\nmodels = 3\nsamplers = ["s"]\nsteps = [1]', "models",
     "must be a list of strings or a value string, got an integer"),
    ('kind = "convergence"\nprompts = ["a"]\nmodels = ["m"]\nsamplers = ["s"]\nsteps = [10, 20.5]', "steps[1]",
     "must be an integer, got a number"),
    ('kind = "convergence"\nprompts = ["a"]\nmodels = ["m"]\nsamplers = ["s"]\nsteps = [1]\nseeds = {a = 1}',
     "seeds", 'must be a list of numbers or a value string such as "10-40 [4]", got a table'),
    ('kind = "cfg"\nimage_id = "12"\ncfg = [3]', "image_id", "must be an integer, got a string"),
    ('kind = "cfg"\nimage_id = 0\ncfg = [3]', "image_id", "must be an image id (1 or more), got 0"),
    ('kind = "cfg"\nimage_id = 3\ncfg = [3, "x"]', "cfg[1]", "must be a number, got a string"),
    ('kind = "cfg"\nimage_id = 3\ncfg = 7', "cfg", 'value string such as "3-12 [4]", got an integer'),
]  # fmt: skip


@pytest.mark.parametrize(("text", "key", "message"), BAD_FILES, ids=[f"{i}-{c[1]}" for i, c in enumerate(BAD_FILES)])
def test_each_bad_shape_names_the_key_and_the_file(text: str, key: str | None, message: str) -> None:
    with pytest.raises(ExperimentFileError) as caught:
        parse_experiment(text, "exp.toml")
    error = caught.value
    assert (error.source, error.key) == ("exp.toml", key)
    assert message in error.problem
    line = str(error)
    assert line.startswith(f"exp.toml: {key}: " if key else "exp.toml: ")
    assert "\n" not in line


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ExperimentFileError, match=r"nope\.toml: no such file"):
        load_experiment(tmp_path / "nope.toml")
    with pytest.raises(ExperimentFileError, match="cannot read it"):
        load_experiment(tmp_path)  # a folder
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ExperimentFileError, match="cannot read it"):
        load_experiment(binary)


def test_run_refuses_a_bad_file_with_one_line_and_exit_2_before_connecting(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[base]\nprompt = 'p'\n[axes]\nsteps = 10\n")
    # Port 9 (discard) is closed: reaching the network would fail with exit 1 instead.
    result = CliRunner().invoke(cli, ["--url", "ws://127.0.0.1:9/rpc", "--token", "t", "run", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f'error: {path}: axes.steps: must be a list of values or a value string such as "10-40 [4]", got an integer'
    ]
    assert result.stdout == ""


def test_run_with_a_missing_file_is_one_line() -> None:
    result = CliRunner().invoke(cli, ["--token", "t", "run", "no-such-experiment.toml"])
    assert result.exit_code == 2
    assert result.stderr == "error: no-such-experiment.toml: no such file\n"


def test_examples_exist_and_pass_validation() -> None:
    paths = sorted(EXAMPLES.glob("*.toml"))
    names = {path.name for path in paths}
    assert {"sampler-convergence.toml", "cfg-sweep.toml", "prompt-sr.toml", "size-and-steps.toml"} <= names
    kinds = {}
    for path in paths:
        spec = load_experiment(path)
        kinds[path.name] = spec.kind
        text = path.read_text()
        assert "#" in text, f"{path.name} should explain itself in comments"
        if spec.kind != "cfg":  # a cfg experiment takes its model from the image
            models = [spec.params.get("base", {}).get("model"), *spec.params.get("models", [])]
            assert "tiny-sd" in models, f"{path.name} should run on the built-in model"
    assert kinds["sampler-convergence.toml"] == "convergence"
    assert kinds["cfg-sweep.toml"] == "cfg"
    assert "prompt_sr" in load_experiment(EXAMPLES / "prompt-sr.toml").params["axes"]
    assert "replace" in (EXAMPLES / "cfg-sweep.toml").read_text().lower()


def test_spec_axes_for_the_summary_line() -> None:
    assert parse_experiment(SWEEP).axes() == {
        "sampler": ["Euler a", "DPM++ 2M Karras"],
        "steps": "10-40 [4]",
        "seed": [1, 2],
    }
    assert ExperimentSpec(kind="cfg", params={"image_id": 1, "cfg": [3, 7]}).axes() == {"cfg_scale": [3, 7]}
