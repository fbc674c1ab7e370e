"""--vary-seed / vary_seed in every way an experiment is described, and sampler names in the CLI's tables, offline."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cauldron_client.cli import cli
from cauldron_client.commands.analysis import format_analysis
from cauldron_client.commands.experiments import cfg_experiment, convergence_experiment, seed_line
from cauldron_client.commands.generate import sweep_experiment
from cauldron_client.experiment_file import ExperimentFileError, parse_experiment


def test_vary_seed_is_sent_only_when_asked_for() -> None:
    plain = sweep_experiment(prompts=["a red fox in snow"], steps=["2-6 (+2)"])
    assert "vary_seed" not in plain.request() and "vary_seed" not in plain.plan_request()
    varied = sweep_experiment(prompts=["a red fox in snow"], steps=["2-6 (+2)"], vary_seed=True)
    assert varied.request()["vary_seed"] is True and varied.plan_request()["vary_seed"] is True
    convergence = convergence_experiment(
        prompts=["p"], models=["tiny-sd"], samplers=["Euler"], steps=["2,4"], vary_seed=True
    )
    assert (convergence.method, convergence.request()["vary_seed"]) == ("experiments.convergence", True)
    assert convergence.plan_request()["vary_seed"] is True


def test_cfg_with_vary_seed_plans_without_the_image_seed() -> None:
    image = {"params": {"prompt": "p", "seed": 1234, "cfg_scale": 7.0}, "seed": 1234}
    spec = cfg_experiment(7, [[3.0, 5.0]], vary_seed=True)
    assert spec.request() == {"image_id": 7, "cfg": [3.0, 5.0], "vary_seed": True}
    assert spec.plan_request(image)["base"]["seed"] == -1
    assert cfg_experiment(7, [[3.0]]).plan_request(image)["base"]["seed"] == 1234
    assert image["params"]["seed"] == 1234, "the image given is not changed"


def test_experiment_files_take_vary_seed() -> None:
    text = 'kind = "sweep"\nvary_seed = true\n[base]\nprompt = "p"\n[axes]\nsteps = "2-4"\n'
    assert parse_experiment(text, "x.toml").request()["vary_seed"] is True
    assert "vary_seed" not in parse_experiment('[base]\nprompt = "p"\n', "x.toml").request()
    with pytest.raises(ExperimentFileError) as caught:
        parse_experiment('vary_seed = "yes"\n[base]\nprompt = "p"\n', "x.toml")
    assert str(caught.value) == "x.toml: vary_seed: must be true or false, got a string"


@pytest.mark.parametrize("command", [["sweep"], ["convergence"], ["cfg"]])
def test_help_says_how_seeds_are_chosen(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0 and "--vary-seed" in result.output


def test_sweep_help_says_one_seed_is_shared_by_default() -> None:
    output = CliRunner().invoke(cli, ["sweep", "--help"], terminal_width=200).output
    assert "drawn once and shared by every cell" in " ".join(output.split())


def test_seed_line_from_the_recorded_spec() -> None:
    assert seed_line({"seed": 3389157455, "vary_seed": False}, has_seed_axis=False) == "seed 3389157455 for every cell"
    assert seed_line({"seed": -1, "vary_seed": True}, has_seed_axis=False) == (
        "seeds: each cell drew its own for a seed of -1 (vary_seed)"
    )
    assert seed_line({"seed": 5, "vary_seed": False}, has_seed_axis=True) is None  # the axis line says it
    assert seed_line({"base": {}}, has_seed_axis=False) is None  # recorded before seeds were in the spec


def test_analysis_rows_are_per_sampler_and_schedule() -> None:
    group = {"series": 2, "converged": 2, "never_converged": 0, "curve": []}
    spread = {"median": 8.0, "min": 8.0, "max": 8.0}
    result = {
        "convergence": {
            "metric": "mad",
            "threshold": 0.02,
            "by_sampler": [
                {**group, "key": {"sampler": "DPM++ 2M", "schedule": "Automatic"}, "label": "DPM++ 2M",
                 "converged_at": spread},
                {**group, "key": {"sampler": "DPM++ 2M", "schedule": "Karras"}, "label": "DPM++ 2M Karras",
                 "converged_at": {**spread, "median": 4.0, "min": 4.0, "max": 4.0}},
            ],
        },
    }  # fmt: skip
    lines = format_analysis(result, "mad", 0.02).splitlines()
    assert lines[2].split() == ["DPM++", "2M", "2", "2", "8", "8–8", "0"]
    assert lines[3].split() == ["DPM++", "2M", "Karras", "2", "2", "4", "4–4", "0"]


def test_queue_and_import_tables_name_the_schedule() -> None:
    from cauldron_client.commands.queue import _job_row

    job = {"id": 1, "experiment_id": 2, "idx": 0, "priority": 0}
    params = {"model": "tiny-sd", "sampler": "DPM++ SDE", "schedule": "Karras", "steps": 4, "width": 64, "height": 64}
    assert _job_row({**job, "params": params})[5] == "DPM++ SDE Karras"  # as A1111's sampler list names it
    assert _job_row({**job, "params": {**params, "schedule": "Automatic"}})[5] == "DPM++ SDE"
