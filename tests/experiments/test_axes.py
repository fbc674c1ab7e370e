"""Axes: resolution, applying a value to a cell, and a cell's place in the product."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from cauldrond.experiments.axes import (
    AXIS_NAMES,
    Axis,
    apply_axis,
    cell_count,
    coordinates,
    index_of,
    resolve_axes,
)
from cauldrond.experiments.errors import SpecError
from cauldrond.params import GenerationParams


def test_axis_names_cover_every_param() -> None:
    # loras (a list) is swept through its own two axes, lora and lora_weight.
    fields = set(GenerationParams.model_fields) - {"loras"}
    assert set(AXIS_NAMES) == {*fields, "size", "prompt_sr", "lora", "lora_weight"}
    assert len(AXIS_NAMES) == len(set(AXIS_NAMES))


def test_resolve_keeps_order_and_parses() -> None:
    axes = resolve_axes({"steps": "2-4", "sampler": "Euler, DDIM", "cfg_scale": [7], "size": "64x128"})
    assert axes == [
        Axis("steps", (2, 3, 4)),
        Axis("sampler", ("Euler", "DDIM")),
        Axis("cfg_scale", (7.0,)),
        Axis("size", ("64x128",)),
    ]
    assert axes[0].to_dict() == {"name": "steps", "values": [2, 3, 4]}


@pytest.mark.parametrize(
    ("axes", "field", "needle"),
    [
        ({"colour": ["red"]}, "colour", "valid axes: prompt, negative_prompt"),
        ({"steps": []}, "steps", "axis 'steps' has no values"),
        ({"steps": {"a": 1}}, "steps", "give a list of values"),
        ({"steps": "0-2"}, "steps", "axis 'steps': value 0: Input should be greater than or equal to 1"),
        ({"steps": [2, 501]}, "steps", "value 501"),
        ({"width": [64, 65]}, "width", "value 65: Value error, must be a multiple of 8"),
        ({"cfg_scale": "40-60 [3]"}, "cfg_scale", "value 60.0"),
        ({"seed": [-2]}, "seed", "value -2"),
        ({"eta": [1.5]}, "eta", "value 1.5"),
        ({"model": [""]}, "model", "value ''"),
        ({"prompt_sr": ["", "x"]}, "prompt_sr", "must not be empty"),
        ({"size": ["64x64"], "width": [64]}, "size", "axes 'size' and 'width' both set width"),
        ({"height": [64], "size": ["64x64"]}, "size", "both set height"),
    ],
)
def test_resolve_errors_name_axis_and_value(axes: dict[str, Any], field: str, needle: str) -> None:
    with pytest.raises(SpecError) as caught:
        resolve_axes(axes)
    assert needle in str(caught.value)
    assert caught.value.field == field


def test_unknown_axis_lists_every_valid_name() -> None:
    with pytest.raises(SpecError) as caught:
        resolve_axes({"colour": ["red"]})
    for name in AXIS_NAMES:
        assert name in str(caught.value)


def test_apply_plain_field_and_size() -> None:
    cell: dict[str, Any] = {"prompt": "x", "width": 512, "height": 512}
    apply_axis(cell, Axis("steps", (3,)), 3)
    apply_axis(cell, Axis("size", ("64x128",)), "64x128")
    assert cell == {"prompt": "x", "steps": 3, "width": 64, "height": 128}


def test_prompt_sr_replaces_the_first_value_in_both_prompts() -> None:
    axis = resolve_axes({"prompt_sr": "cat, dog, red fox"})[0]
    base = {"prompt": "a cat on a cat mat", "negative_prompt": "ugly cat"}
    results = []
    for value in axis.values:
        cell = dict(base)
        apply_axis(cell, axis, value)
        results.append((cell["prompt"], cell["negative_prompt"]))
    assert results == [
        ("a cat on a cat mat", "ugly cat"),
        ("a dog on a dog mat", "ugly dog"),
        ("a red fox on a red fox mat", "ugly red fox"),
    ]


def test_prompt_sr_found_only_in_the_negative_prompt() -> None:
    axis = Axis("prompt_sr", ("blurry", "noisy"))
    cell = {"prompt": "a cat", "negative_prompt": "blurry, dark"}
    apply_axis(cell, axis, "noisy")
    assert cell == {"prompt": "a cat", "negative_prompt": "noisy, dark"}


def test_prompt_sr_missing_search_text_is_an_error() -> None:
    axis = Axis("prompt_sr", ("dog", "cat"))
    with pytest.raises(SpecError) as caught:
        apply_axis({"prompt": "a cat", "negative_prompt": ""}, axis, "cat")
    assert "axis 'prompt_sr'" in str(caught.value) and "'dog'" in str(caught.value)
    assert (caught.value.field, caught.value.value) == ("prompt_sr", "dog")


AXES = [Axis("a", (1, 2, 3)), Axis("b", ("x", "y")), Axis("c", (0.1, 0.2, 0.3, 0.4))]


def test_coordinates_follow_itertools_product_order() -> None:
    assert cell_count(AXES) == 24
    product = list(itertools.product(*(range(len(axis.values)) for axis in AXES)))
    assert [coordinates(i, AXES) for i in range(cell_count(AXES))] == product
    for index, coords in enumerate(product):
        assert index_of(coords, AXES) == index
    assert coordinates(0, AXES) == (0, 0, 0)
    assert coordinates(5, AXES) == (0, 1, 1)
    assert coordinates(23, AXES) == (2, 1, 3)


def test_coordinates_of_no_axes_and_bad_indices() -> None:
    assert cell_count([]) == 1
    assert coordinates(0, []) == ()
    assert index_of((), []) == 0
    with pytest.raises(IndexError):
        coordinates(24, AXES)
    with pytest.raises(IndexError):
        coordinates(-1, AXES)
    with pytest.raises(IndexError):
        index_of((0, 2, 0), AXES)
    with pytest.raises(ValueError, match="2 coordinates for 3 axes"):
        index_of((0, 0), AXES)
