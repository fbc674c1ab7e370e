"""Expanding a spec (base + axes, or explicit cells) into validated cells."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest

from cauldrond.experiments.cells import SpecError, expand_cells, resolved_axes_spec
from cauldrond.params import MAX_SEED

BASE: dict[str, Any] = {"prompt": "a red cat", "negative_prompt": "blurry cat", "seed": 5, "width": 64, "height": 64}


def test_product_is_first_axis_outermost_over_base() -> None:
    cells = expand_cells(BASE, axes={"sampler": "Euler, DDIM", "steps": "2-4"}, max_cells=100)
    assert [(c["sampler"], c["steps"]) for c in cells] == [
        ("Euler", 2),
        ("Euler", 3),
        ("Euler", 4),
        ("DDIM", 2),
        ("DDIM", 3),
        ("DDIM", 4),
    ]
    assert all(c["seed"] == 5 and c["prompt"] == "a red cat" and c["width"] == 64 for c in cells)
    assert set(cells[0]) == {
        "prompt",
        "negative_prompt",
        "model",
        "vae",
        "loras",
        "sampler",
        "schedule",
        "steps",
        "cfg_scale",
        "seed",
        "width",
        "height",
        "clip_skip",
        "eta",
    }, "every cell is complete: defaults filled in"


def test_float_and_size_axes() -> None:
    cells = expand_cells(BASE, axes={"cfg_scale": "5-6 (+0.5)", "size": "64x128, 128x64"}, max_cells=100)
    assert [(c["cfg_scale"], c["width"], c["height"]) for c in cells] == [
        (5.0, 64, 128),
        (5.0, 128, 64),
        (5.5, 64, 128),
        (5.5, 128, 64),
        (6.0, 64, 128),
        (6.0, 128, 64),
    ]


def test_explicit_cells_merge_over_base() -> None:
    cells = expand_cells(BASE, cells=[{"steps": 3}, {"prompt": "a dog", "seed": 9}], max_cells=10)
    assert [(c["prompt"], c["steps"], c["seed"]) for c in cells] == [("a red cat", 3, 5), ("a dog", 20, 9)]


def test_no_axes_is_one_cell() -> None:
    assert len(expand_cells(BASE, max_cells=1)) == 1
    assert len(expand_cells(BASE, axes={}, max_cells=1)) == 1


def test_random_seeds_are_drawn_per_cell_and_fixed_seeds_kept() -> None:
    cells = expand_cells({"prompt": "x"}, axes={"steps": "1-50"}, max_cells=100)
    seeds = [c["seed"] for c in cells]
    assert all(0 <= s <= MAX_SEED for s in seeds)
    assert len(set(seeds)) > 40, "each cell draws its own seed"
    cells = expand_cells({"prompt": "x"}, axes={"seed": "-1, 7, -1"}, max_cells=10)
    assert cells[1]["seed"] == 7
    assert -1 not in [c["seed"] for c in cells]


def test_prompt_sr_edits_prompt_and_negative_prompt() -> None:
    cells = expand_cells(BASE, axes={"prompt_sr": "cat, dog", "steps": [2, 3]}, max_cells=10)
    assert [(c["prompt"], c["negative_prompt"], c["steps"]) for c in cells] == [
        ("a red cat", "blurry cat", 2),
        ("a red cat", "blurry cat", 3),
        ("a red dog", "blurry dog", 2),
        ("a red dog", "blurry dog", 3),
    ]


@pytest.mark.parametrize("first", ["prompt", "prompt_sr"])
def test_prompt_sr_applies_to_the_prompt_axis_whatever_the_order(first: str) -> None:
    given = {"prompt": ["a cat", "the cat sat"], "prompt_sr": ["cat", "owl"]}
    axes = {first: given[first], **given}
    cells = expand_cells({"seed": 1}, axes=axes, max_cells=10)
    assert sorted(c["prompt"] for c in cells) == ["a cat", "a owl", "the cat sat", "the owl sat"]


def test_prompt_sr_search_text_missing_from_base() -> None:
    with pytest.raises(SpecError) as caught:
        expand_cells(BASE, axes={"prompt_sr": "horse, cow"}, max_cells=10)
    assert "axis 'prompt_sr'" in str(caught.value) and "'horse'" in str(caught.value)
    assert (caught.value.field, caught.value.value) == ("prompt_sr", "horse")


def test_cell_count_at_and_over_the_limit() -> None:
    assert len(expand_cells(BASE, axes={"seed": "1-10", "steps": "1-10"}, max_cells=100)) == 100
    with pytest.raises(SpecError, match="101 cells, over the limit of 100"):
        expand_cells(BASE, axes={"seed": "1-101"}, max_cells=100)
    with pytest.raises(SpecError, match="3 cells, over the limit of 2"):
        expand_cells(BASE, cells=[{}, {}, {}], max_cells=2)


def test_a_billion_cells_fail_before_any_exists() -> None:
    axes = {"seed": "1-1000", "cfg_scale": "0-49.95 (+0.05)", "prompt": [f"p{i}" for i in range(1000)]}
    tracemalloc.start()
    try:
        with pytest.raises(SpecError, match="1000000000 cells, over the limit of 10000") as caught:
            expand_cells(BASE, axes=axes, max_cells=10_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The three axes' 3,000 values take about 120 KiB; 10,000 cell dicts would take several MiB.
    assert peak < 1024 * 1024, f"{peak} bytes allocated: cells were built before the count was checked"
    assert caught.value.value == 10**9


@pytest.mark.parametrize(
    ("base", "axes", "cells", "needle", "field"),
    [
        ({**BASE, "steps": 0}, None, None, "parameter 'steps'", "steps"),
        ({**BASE, "steps": 0}, {"seed": [1, 2]}, None, "parameter 'steps'", "steps"),
        (BASE, {"steps": "2, 0"}, None, "axis 'steps': value 0", "steps"),
        (BASE, {"colour": "red"}, None, "unknown axis 'colour'", "colour"),
        (BASE, {"steps": "1-"}, None, "axis 'steps': bad range '1-'", "steps"),
        (BASE, {"size": "64x60"}, None, "axis 'size': bad size '64x60'", "size"),
        (BASE, None, [{"steps": 3}, {"steps": "3"}], "cell 1: parameter 'steps'", "steps"),
        (BASE, None, [{"size": "64x64"}], "cell 0: parameter 'size'", "size"),
        ({"steps": 3}, {"seed": [1]}, None, "parameter 'prompt'", "prompt"),
        (BASE, {"prompt_sr": ["cat", "x" * 4000]}, None, "axis 'prompt_sr' sets 'prompt'", "prompt"),
    ],
)
def test_errors_name_what_is_at_fault(
    base: dict[str, Any],
    axes: dict[str, Any] | None,
    cells: list[dict[str, Any]] | None,
    needle: str,
    field: str,
) -> None:
    with pytest.raises(SpecError) as caught:
        expand_cells(base, axes=axes, cells=cells, max_cells=100)
    assert needle in str(caught.value)
    assert caught.value.field == field
    assert len(str(caught.value)) < 400


def test_axes_and_cells_together_are_refused() -> None:
    with pytest.raises(SpecError, match="either axes or cells"):
        expand_cells(BASE, axes={"steps": [1]}, cells=[{}], max_cells=10)


def test_resolved_axes_spec_is_json_and_expands_the_same() -> None:
    axes = {"steps": "2-6 [3]", "cfg_scale": [7, 7.5], "size": "64x64", "prompt_sr": '"red cat", "blue, cat"'}
    resolved = resolved_axes_spec(axes)
    assert resolved == [
        {"name": "steps", "values": [2, 4, 6]},
        {"name": "cfg_scale", "values": [7.0, 7.5]},
        {"name": "size", "values": ["64x64"]},
        {"name": "prompt_sr", "values": ["red cat", "blue, cat"]},
    ]
    assert json.loads(json.dumps(resolved)) == resolved
    again = {axis["name"]: axis["values"] for axis in resolved}
    assert expand_cells(BASE, axes=axes, max_cells=100) == expand_cells(BASE, axes=again, max_cells=100)
    assert resolved_axes_spec(again) == resolved
