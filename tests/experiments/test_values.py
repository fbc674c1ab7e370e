"""Axis values from lists and from A1111 X/Y/Z plot text."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from cauldrond.experiments.errors import SpecError
from cauldrond.experiments.values import AXIS_KINDS, MAX_AXIS_VALUES, axis_kind, parse_axis_values, parse_size
from cauldrond.params import GenerationParams


@pytest.mark.parametrize(
    ("axis", "text", "expected"),
    [
        ("steps", "1-5", [1, 2, 3, 4, 5]),
        ("steps", "1-5 (+2)", [1, 3, 5]),
        ("steps", "1-6 (+2)", [1, 3, 5]),
        ("steps", "1-5 (2)", [1, 3, 5]),
        ("steps", " 1 - 5 ( +2 ) ", [1, 3, 5]),
        ("steps", "5-1", [5, 4, 3, 2, 1]),
        ("steps", "9-1 (-4)", [9, 5, 1]),
        ("steps", "7-7", [7]),
        # A1111 truncates evenly spaced floats: 12.5 -> 12, 17.5 -> 17; 13.33 -> 13, 16.67 -> 16.
        ("steps", "10-20 [5]", [10, 12, 15, 17, 20]),
        ("steps", "10-20 [4]", [10, 13, 16, 20]),
        ("steps", "10-20:4", [10, 13, 16, 20]),
        ("steps", "10-20 : 4", [10, 13, 16, 20]),
        ("steps", "10-20 [1]", [10]),
        ("steps", "20-10 [3]", [20, 15, 10]),
        ("steps", "1-2 [4]", [1, 1, 1, 2]),
        ("steps", "1, 5-7, 10", [1, 5, 6, 7, 10]),
        ("steps", "20", [20]),
        ("steps", "3, 3", [3, 3]),
        ("seed", "-1", [-1]),
        ("seed", "-1, 5", [-1, 5]),
        ("seed", "-5--1", [-5, -4, -3, -2, -1]),
        ("seed", "-5 - -1 (+2)", [-5, -3, -1]),
        ("seed", "-3-3 [3]", [-3, 0, 3]),
        # Truncation is towards zero, as Python's int() of a float: -6.67 -> -6.
        ("seed", "-10-0 [4]", [-10, -6, -3, 0]),
        ("seed", "+3-+5", [3, 4, 5]),
        ("cfg_scale", "5-9 (+0.5)", [5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0]),
        ("cfg_scale", "3.0-12.0 [4]", [3.0, 6.0, 9.0, 12.0]),
        ("cfg_scale", "3-12:4", [3.0, 6.0, 9.0, 12.0]),
        ("cfg_scale", "0-1 (+0.1)", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
        ("cfg_scale", "0-1 (+0.3)", [0.0, 0.3, 0.6, 0.9]),
        ("cfg_scale", "0-1 [4]", [0.0, 1 / 3, 2 / 3, 1.0]),
        ("cfg_scale", "1-3", [1.0, 2.0, 3.0]),
        ("cfg_scale", "2-1 (-0.5)", [2.0, 1.5, 1.0]),
        ("cfg_scale", "-2.5-2.5 (+2.5)", [-2.5, 0.0, 2.5]),
        ("cfg_scale", "7, 1e-3, .5, 4.", [7.0, 0.001, 0.5, 4.0]),
        ("cfg_scale", "1-2 (+0.5), 7", [1.0, 1.5, 2.0, 7.0]),
        ("eta", "0-1 [3]", [0.0, 0.5, 1.0]),
    ],
)
def test_numeric_text(axis: str, text: str, expected: list[Any]) -> None:
    values = parse_axis_values(axis, text)
    assert values == expected
    wanted_type = int if axis_kind(axis) == "int" else float
    assert all(type(value) is wanted_type for value in values)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"a, b", c', ["a, b", "c"]),
        ("Euler a, DPM++ 2M,DDIM", ["Euler a", "DPM++ 2M", "DDIM"]),
        ("  spaced  ,  out  ", ["spaced", "out"]),
        ('"say ""hi""", x', ['say "hi"', "x"]),
        ("one\ntwo, three", ["one", "two", "three"]),
        ("a,,b", ["a", "", "b"]),
        ("1-5", ["1-5"]),
    ],
)
def test_text_csv(text: str, expected: list[str]) -> None:
    assert parse_axis_values("prompt", text) == expected


def test_lists_are_taken_as_is_with_strict_types() -> None:
    assert parse_axis_values("steps", [3, 1, 2]) == [3, 1, 2]
    assert parse_axis_values("seed", (-1, 7)) == [-1, 7]
    cfg = parse_axis_values("cfg_scale", [7, 7.5])
    assert cfg == [7.0, 7.5] and all(type(v) is float for v in cfg)
    assert parse_axis_values("sampler", ["Euler a, Karras"]) == ["Euler a, Karras"], "a list item is never CSV-split"
    assert parse_axis_values("size", ["512x768", [64, 128], " 64 X 64 "]) == ["512x768", "64x128", "64x64"]


@pytest.mark.parametrize(
    ("axis", "raw", "needle"),
    [
        ("steps", ["7"], "'7' is not an integer"),
        ("steps", [7.0], "7.0 is not an integer"),
        ("steps", [True], "True is not an integer"),
        ("cfg_scale", ["7"], "'7' is not a finite number"),
        ("cfg_scale", [float("nan")], "nan is not a finite number"),
        ("cfg_scale", [float("inf")], "inf is not a finite number"),
        ("cfg_scale", [False], "False is not a finite number"),
        ("prompt", [3], "3 is not a string"),
        ("size", [512], "bad size 512"),
        ("size", [[64, 64, 64]], "bad size"),
        ("steps", [], "has no values"),
        ("steps", "", "has no values"),
        ("steps", 5, "give a list of values or a string"),
    ],
)
def test_list_items_of_the_wrong_type(axis: str, raw: Any, needle: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_axis_values(axis, raw)
    assert f"axis {axis!r}" in str(caught.value)
    assert needle in str(caught.value)
    assert caught.value.field == axis


@pytest.mark.parametrize(
    ("axis", "text", "bad", "needle"),
    [
        ("steps", "10-", "10-", "bad range '10-'"),
        ("steps", "1-5 (+0)", "1-5 (+0)", "step 0"),
        ("steps", "1-5 (-1)", "1-5 (-1)", "goes away from the end"),
        ("steps", "5-1 (+1)", "5-1 (+1)", "goes away from the end"),
        ("steps", "1-5 (+0.5)", "1-5 (+0.5)", "bad range"),
        ("steps", "1-5 [0]", "1-5 [0]", "count of at least 1"),
        ("steps", "1-5:0", "1-5:0", "count of at least 1"),
        ("steps", "1.5", "1.5", "bad value '1.5'"),
        ("steps", "2, seven", "seven", "bad value 'seven'"),
        ("steps", "1,,2", "1,,2", "empty value"),
        ("steps", "1-5 [x]", "1-5 [x]", "bad range"),
        ("seed", "1-" + "9" * 5000, "1-" + "9" * 5000, "bad range"),
        ("cfg_scale", "nan", "nan", "bad value 'nan'"),
        ("cfg_scale", "inf", "inf", "bad value"),
        ("cfg_scale", "1e999", "1e999", "out of range"),
        ("cfg_scale", "1-5 (+0.0)", "1-5 (+0.0)", "step 0"),
        ("cfg_scale", "5-9 (-0.5)", "5-9 (-0.5)", "goes away from the end"),
        ("cfg_scale", "3-", "3-", "bad range '3-'"),
        ("size", "500x512", "500x512", "width 500 is not a multiple of 8"),
        ("size", "512x8192", "512x8192", "height 8192 is outside 64..4096"),
        ("size", "32x64", "32x64", "width 32 is outside"),
        ("size", "512", "512", "bad size '512'"),
        ("size", "512x512x512", "512x512x512", "bad size"),
    ],
)
def test_bad_text_names_axis_and_value(axis: str, text: str, bad: str, needle: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_axis_values(axis, text)
    message = str(caught.value)
    assert message.startswith(f"axis {axis!r}: "), message
    assert needle in message
    assert caught.value.field == axis
    assert caught.value.value == bad
    assert len(message) < 300, "a long value is shortened in the message"


@pytest.mark.parametrize(
    "text",
    ["1-100000", "0-4000000000", "1-20000 [20000]", "1-1000000:1000000", "0-1000 (+0.001)", "1e-300-1 (+1e-300)"],
)
def test_huge_ranges_fail_before_they_exist(text: str) -> None:
    axis = "cfg_scale" if "." in text or "e" in text else "seed"
    tracemalloc.start()
    try:
        with pytest.raises(SpecError, match="over the limit of 10000 per axis") as caught:
            parse_axis_values(axis, text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The limit's own 10,000 ints already take about 460 KiB; the refusal must come before any range is built.
    assert peak < 128 * 1024, f"{peak} bytes allocated: the range was materialised before it was refused"
    assert caught.value.field == axis


def test_the_limit_counts_the_whole_axis() -> None:
    assert len(parse_axis_values("seed", f"1-{MAX_AXIS_VALUES}")) == MAX_AXIS_VALUES
    with pytest.raises(SpecError, match="with the 5000 before it"):
        parse_axis_values("seed", "1-5000, 1-5001")
    with pytest.raises(SpecError, match="10001 values, over the limit"):
        parse_axis_values("seed", list(range(MAX_AXIS_VALUES + 1)))
    with pytest.raises(SpecError, match="over the limit"):
        parse_axis_values("prompt", ",".join(["x"] * (MAX_AXIS_VALUES + 1)))


def test_every_param_is_an_axis_of_the_right_kind() -> None:
    fields = set(GenerationParams.model_fields) - {"loras"}  # swept by the lora and lora_weight axes
    assert set(AXIS_KINDS) == {*fields, "size", "prompt_sr", "lora", "lora_weight"}
    assert {name for name, kind in AXIS_KINDS.items() if kind == "int"} == {
        "steps",
        "seed",
        "width",
        "height",
        "clip_skip",
    }
    assert {name for name, kind in AXIS_KINDS.items() if kind == "float"} == {"cfg_scale", "eta", "lora_weight"}
    assert AXIS_KINDS["size"] == "size"
    assert AXIS_KINDS["prompt_sr"] == "text"
    with pytest.raises(SpecError, match="unknown axis 'colour'"):
        parse_axis_values("colour", "red")


def test_parse_size() -> None:
    assert parse_size("size", "512x768") == (512, 768)
    assert parse_size("size", (64, 4096)) == (64, 4096)
    with pytest.raises(SpecError, match="height 100 is not a multiple of 8"):
        parse_size("size", "64x100")
