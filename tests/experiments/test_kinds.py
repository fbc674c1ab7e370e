"""Experiment types reduce to base + axes."""

from __future__ import annotations

from typing import Any

import pytest

from cauldrond.experiments.cells import expand_cells
from cauldrond.experiments.errors import SpecError
from cauldrond.experiments.kinds import cfg_spec, convergence_spec

BASE: dict[str, Any] = {"width": 64, "height": 64, "cfg_scale": 6.0}


def test_convergence_axes_in_order_prompt_model_sampler_seed_steps() -> None:
    base, axes = convergence_spec(
        base=BASE,
        prompts=["a cat, oil painting", "a dog"],
        models=["tiny-sd", "other"],
        samplers="Euler a, DPM++ 2M",
        steps="4-12 [3]",
        seeds=[1, 2],
    )
    assert base == BASE
    assert list(axes) == ["prompt", "model", "sampler", "seed", "steps"]
    assert axes == {
        "prompt": ["a cat, oil painting", "a dog"],
        "model": ["tiny-sd", "other"],
        "sampler": ["Euler a", "DPM++ 2M"],
        "seed": [1, 2],
        "steps": [4, 8, 12],
    }
    cells = expand_cells(base, axes=axes, max_cells=1000)
    assert len(cells) == 48
    assert [c["steps"] for c in cells[:6]] == [4, 8, 12, 4, 8, 12], "steps vary fastest: a series is adjacent"


def test_convergence_single_values_go_into_base() -> None:
    base, axes = convergence_spec(
        base=BASE, prompts=["a cat"], models="tiny-sd", samplers=["Euler"], steps="2-6 (+2)", seeds="-1"
    )
    assert base == {**BASE, "prompt": "a cat", "model": "tiny-sd", "sampler": "Euler", "seed": -1}
    assert axes == {"steps": [2, 4, 6]}
    assert BASE == {"width": 64, "height": 64, "cfg_scale": 6.0}, "the caller's base is not changed"


@pytest.mark.parametrize(
    ("changes", "field", "needle"),
    [
        ({"prompts": []}, "prompt", "has no values"),
        ({"prompts": "a cat, a dog"}, "prompt", "prompts must be a list"),
        ({"steps": "4-"}, "steps", "axis 'steps': bad range '4-'"),
        ({"seeds": ["1"]}, "seed", "not an integer"),
        ({"samplers": []}, "sampler", "has no values"),
    ],
)
def test_convergence_errors(changes: dict[str, Any], field: str, needle: str) -> None:
    arguments: dict[str, Any] = {
        "base": BASE,
        "prompts": ["a cat"],
        "models": "tiny-sd",
        "samplers": "Euler",
        "steps": "2-4",
        "seeds": [1],
        **changes,
    }
    with pytest.raises(SpecError) as caught:
        convergence_spec(**arguments)
    assert needle in str(caught.value)
    assert caught.value.field == field


def test_cfg_keeps_the_image_params_and_seed() -> None:
    image = {"prompt": "a cat", "seed": 1234, "steps": 3, "cfg_scale": 7.0, "width": 64, "height": 64}
    base, axes = cfg_spec(image_params=image, cfg="3.0-12.0 [4]")
    assert base == image and base is not image
    assert axes == {"cfg_scale": [3.0, 6.0, 9.0, 12.0]}
    cells = expand_cells(base, axes=axes, max_cells=10)
    assert [(c["seed"], c["cfg_scale"]) for c in cells] == [(1234, 3.0), (1234, 6.0), (1234, 9.0), (1234, 12.0)]
    assert cfg_spec(image_params=image, cfg=[5, 7.5])[1] == {"cfg_scale": [5.0, 7.5]}
    with pytest.raises(SpecError, match="axis 'cfg_scale'"):
        cfg_spec(image_params=image, cfg="")


def test_cfg_with_vary_seed_drops_the_image_seed_so_each_cell_draws_one() -> None:
    image = {"prompt": "a cat", "seed": 1234, "steps": 3, "cfg_scale": 7.0, "width": 64, "height": 64}
    base, axes = cfg_spec(image_params=image, cfg=[3, 5, 7], vary_seed=True)
    assert base == {**image, "seed": -1} and image["seed"] == 1234
    seeds = [cell["seed"] for cell in expand_cells(base, axes=axes, max_cells=10)]
    assert len(set(seeds)) == 3 and 1234 not in seeds
