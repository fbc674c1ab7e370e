"""File names for fetched images: unique per experiment and cell, readable, safe on any file system."""

from __future__ import annotations

import pytest

from cauldron_client.file_names import coordinates, image_file_name, sanitize

AXES = [("sampler", ["Euler", "DPM++ 2M Karras"]), ("steps", [2, 6]), ("seed", [1, 2, 3])]


def test_coordinates_put_the_first_axis_outermost() -> None:
    # 2 x 2 x 3 cells; cell 7 = sampler 1 (7 // 6), steps 0 ((7 % 6) // 3), seed 1 (7 % 3): counted by hand.
    assert coordinates(7, AXES) == {"sampler": "DPM++ 2M Karras", "steps": 2, "seed": 2}
    assert coordinates(0, AXES) == {"sampler": "Euler", "steps": 2, "seed": 1}
    assert coordinates(11, AXES) == {"sampler": "DPM++ 2M Karras", "steps": 6, "seed": 3}
    assert coordinates(12, AXES) == {}  # outside the product (explicit cells): no guess
    assert coordinates(0, []) == {}


def test_names_carry_experiment_index_and_axis_values() -> None:
    params = {"sampler": "DPM++ 2M", "schedule": "Karras", "steps": 6, "seed": 2}
    assert image_file_name(12, 10, params, AXES) == "e12-0010-DPM++_2M_Karras-steps6-seed2.png"
    size_axes = [("size", ["512x768", "768x512"]), ("cfg_scale", [7.5])]
    assert image_file_name(3, 1, {}, size_axes) == "e3-0001-768x512-cfg7.5.png"
    assert image_file_name(3, 0, {}, []) == "e3-0000.png"
    assert image_file_name(3, None, {}, AXES) == "e3-image.png"


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("DPM++ 2M Karras", "DPM++_2M_Karras"),
        ("../../etc/passwd", "etc_passwd"),  # no way out of the folder
        ("a cat, in the snow!", "a_cat_in_the_snow"),
        (".hidden", "hidden"),
        ("///", "x"),
        ("a" * 50, "a" * 32),
    ],
)
def test_sanitize(text: str, safe: str) -> None:
    assert sanitize(text) == safe
