"""The X/Y/Z plot's script_args as A1111 clients send them, read into axes; bad ones refused by name.

Expected axis indices come from A1111's own source, copied below with each entry's tab marker, and filtered here
the way A1111's ``Script.ui`` filters them for txt2img; expected values are worked out by hand."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cauldrond.a1111.xyz import XyzArgumentError, parse_script_args, xyz_experiment

# A1111 scripts/xyz_grid.py ``axis_options`` (v1.10 list; read from SLAPaper/stable-diffusion-webui@54f627bb, a
# fork tracking A1111 dev): (label, tab) where tab is "both", "txt2img" (AxisOptionTxt2Img) or "img2img".
A1111_AXIS_OPTIONS = [
    ("Nothing", "both"), ("Seed", "both"), ("Var. seed", "both"), ("Var. strength", "both"), ("Steps", "both"),
    ("Hires steps", "txt2img"), ("CFG Scale", "both"), ("Image CFG Scale", "img2img"), ("Prompt S/R", "both"),
    ("Prompt order", "both"), ("Sampler", "txt2img"), ("Hires sampler", "txt2img"), ("Sampler", "img2img"),
    ("Checkpoint name", "both"), ("Negative Guidance minimum sigma", "both"), ("Sigma Churn", "both"),
    ("Sigma min", "both"), ("Sigma max", "both"), ("Sigma noise", "both"), ("Schedule type", "both"),
    ("Schedule min sigma", "both"), ("Schedule max sigma", "both"), ("Schedule rho", "both"),
    ("Skip Early CFG", "both"), ("Beta schedule alpha", "both"), ("Beta schedule beta", "both"), ("Eta", "both"),
    ("Clip skip", "both"), ("Denoising", "both"), ("Initial noise multiplier", "both"), ("Extra noise", "both"),
    ("Hires upscaler", "txt2img"), ("Cond. Image Mask Weight", "img2img"), ("VAE", "both"), ("Styles", "both"),
    ("UniPC Order", "both"), ("Face restore", "both"), ("Token merging ratio", "both"),
    ("Token merging ratio high-res", "both"), ("Always discard next-to-last sigma", "both"),
    ("SGM noise multiplier", "both"), ("Refiner checkpoint", "both"), ("Refiner switch at", "both"),
    ("RNG source", "both"), ("FP8 mode", "both"), ("Size", "both"),
]  # fmt: skip
# The txt2img dropdown: ``[x for x in axis_options if type(x) == AxisOption or x.is_img2img == is_img2img]``.
TXT2IMG = [label for label, tab in A1111_AXIS_OPTIONS if tab != "img2img"]
# webuiapi's README (mix1009/sdwebuiapi), "XYZPlotAvailableTxt2ImgScripts", for its 11-argument example.
WEBUIAPI_TXT2IMG = [
    "Nothing", "Seed", "Var. seed", "Var. strength", "Steps", "Hires steps", "CFG Scale", "Prompt S/R",
    "Prompt order", "Sampler", "Checkpoint name", "Sigma Churn", "Sigma min", "Sigma max", "Sigma noise", "Eta",
    "Clip skip", "Denoising", "Hires upscaler", "VAE", "Styles",
]  # fmt: skip

# Each supported type with a value text, our axis and the values it must give (worked out by hand).
SUPPORTED = {
    "Seed": ("7, 9", "seed", (7, 9)),
    "Steps": ("2-4", "steps", (2, 3, 4)),
    "CFG Scale": ("5-6 (+0.5)", "cfg_scale", (5.0, 5.5, 6.0)),
    "Prompt S/R": ("cat, dog", "prompt_sr", ("cat", "dog")),
    "Sampler": ("Euler a, DDIM", "sampler", ("Euler a", "DDIM")),
    "Checkpoint name": ("tiny-sd", "model", ("tiny-sd",)),
    "Schedule type": ("Automatic, Karras", "schedule", ("Automatic", "Karras")),
    "Eta": ("0, 0.5", "eta", (0.0, 0.5)),
    "Clip skip": ("1-2", "clip_skip", (1, 2)),
    "Size": ("64x64, 128x96", "size", ("64x64", "128x96")),
}


def release_args(
    x: tuple[Any, Any] = (0, ""), y: tuple[Any, Any] = (0, ""), z: tuple[Any, Any] = (0, ""), **flags: Any
) -> list[Any]:
    """An 18-item script_args as A1111 1.10's API takes it (the order of ``Script.ui``'s return list)."""
    named = {
        "draw_legend": True,
        "include_lone_images": False,
        "include_sub_grids": False,
        "no_fixed_seeds": False,
        "vary_seeds_x": False,
        "vary_seeds_y": False,
        "vary_seeds_z": False,
        "margin_size": 0,
        "csv_mode": False,
        **flags,
    }
    return [x[0], x[1], [], y[0], y[1], [], z[0], z[1], [], *named.values()]


@pytest.mark.parametrize("index", range(len(TXT2IMG)))
def test_every_a1111_axis_index_means_a1111s_type(index: int) -> None:
    label = TXT2IMG[index]
    if label == "Nothing":
        request = parse_script_args(release_args(x=(index, "ignored")))
        assert request.x.field is None and request.x.values == ()
    elif label in SUPPORTED:
        text, field, values = SUPPORTED[label]
        request = parse_script_args(release_args(x=(index, text)))
        assert (request.x.label, request.x.field, request.x.values) == (label, field, values)
    else:
        with pytest.raises(XyzArgumentError) as caught:
            parse_script_args(release_args(x=(index, "1")))
        assert caught.value.argument == "x_type" and caught.value.position == 0
        assert repr(label) in str(caught.value) and "not supported" in str(caught.value)
        assert "Steps (4)" in str(caught.value) and "CFG Scale (6)" in str(caught.value)


def test_the_reference_list_has_the_indices_clients_hard_code() -> None:
    # The indices API users write into their scripts (A1111 issue threads, webuiapi users): a sanity check that
    # the copied reference list is the txt2img one.
    assert (TXT2IMG.index("Steps"), TXT2IMG.index("CFG Scale"), TXT2IMG.index("Prompt S/R")) == (4, 6, 7)
    assert (TXT2IMG.index("Sampler"), TXT2IMG.index("Checkpoint name"), TXT2IMG.index("Size")) == (9, 11, 42)


def test_webuiapi_readme_example() -> None:
    # The 11-item form from webuiapi's README, booleans as the strings it insists on, its own (older) indices.
    script_args = [
        WEBUIAPI_TXT2IMG.index("Steps"),
        "20,30",
        WEBUIAPI_TXT2IMG.index("Sampler"),
        "Euler a, LMS",
        WEBUIAPI_TXT2IMG.index("Nothing"),
        "",
        "True",
        "False",
        "False",
        "False",
        0,
    ]
    request = parse_script_args(script_args)
    assert (request.x.label, request.x.values) == ("Steps", (20, 30))
    assert (request.y.label, request.y.values) == ("Sampler", ("Euler a", "LMS"))
    assert request.z.field is None
    assert (request.draw_legend, request.include_lone_images, request.include_sub_grids) == (True, False, False)
    # Older indices past "Sampler" mean other types than today's: 10 was "Checkpoint name", 16 "Clip skip".
    legacy = list(script_args)
    legacy[0], legacy[1] = WEBUIAPI_TXT2IMG.index("Clip skip"), "1, 2"
    assert parse_script_args(legacy).x.label == "Clip skip"


def test_dropdown_values_and_the_text_fallback() -> None:
    # A1111's UI sends a choice axis's values in the dropdown list; its text box is then empty.
    args = release_args(x=(TXT2IMG.index("Sampler"), ""))
    args[2] = ["Euler a", "DPM++ 2M Karras"]
    request = parse_script_args(args)
    assert request.x.values == ("Euler a", "DPM++ 2M Karras") and request.x.argument == "x_values_dropdown"
    assert request.x.text == "Euler a,DPM++ 2M Karras"  # A1111's list_to_csv_string of the dropdown
    # With csv_mode the text wins; a client that fills only the text (dropdown "") gets it too.
    args[1], args[-1] = "DDIM", True
    assert parse_script_args(args).x.values == ("DDIM",)
    args[2], args[-1] = "", False
    assert parse_script_args(args).x.values == ("DDIM",)


def test_a1111_issue_10471_payload_by_type_name() -> None:
    # A1111 issue #10471: types given by name, dropdowns as "", booleans as strings (14 items, the 1.2 form, is
    # refused with the forms that are read; with the release's 18 items the same values are read).
    payload = [
        "CFG scale",
        "0,3,5,6,7,10,15,20,25,30",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "True",
        "False",
        "False",
        "False",
        0,
    ]
    with pytest.raises(XyzArgumentError) as caught:
        parse_script_args(payload)
    assert caught.value.argument == "script_args" and "got 14" in str(caught.value)
    request = parse_script_args([*payload[:13], "False", "False", "False", 0, "False"])
    assert request.x.values == (0.0, 3.0, 5.0, 6.0, 7.0, 10.0, 15.0, 20.0, 25.0, 30.0)
    assert request.y.field is None and request.z.field is None


@pytest.mark.parametrize(
    ("label", "text", "expected"),
    [
        ("Steps", "1-5", (1, 2, 3, 4, 5)),
        ("Steps", "1-10 (+3)", (1, 4, 7, 10)),
        ("Steps", "1-10 [4]", (1, 4, 7, 10)),  # int(linspace(1, 10, 4)) = 1, 4, 7, 10
        ("Steps", "10-1 [3]", (10, 5, 1)),  # linspace(10, 1, 3) = 10, 5.5, 1 -> truncated
        ("Steps", "5, 8-9, 2", (5, 8, 9, 2)),
        ("Steps", "2, 3,", (2, 3)),  # A1111 skips an empty item of a number axis
        ("Seed", "-1, 42", (-1, 42)),  # -1 is drawn later, by the experiment's seed rules
        ("CFG Scale", "3.0-12.0 [4]", (3.0, 6.0, 9.0, 12.0)),
        ("CFG Scale", "7-5 (-1)", (7.0, 6.0, 5.0)),
        ("Prompt S/R", 'cat, "dog, big", bird', ("cat", "dog, big", "bird")),
        ("Size", "64x64,96x128", ("64x64", "96x128")),
    ],
)
def test_values_expand_as_a1111_does(label: str, text: str, expected: tuple[Any, ...]) -> None:
    assert parse_script_args(release_args(x=(TXT2IMG.index(label), text))).x.values == expected


@pytest.mark.parametrize(
    ("change", "argument", "needle"),
    [
        ({0: 43}, "x_type", "not an axis type"),
        ({0: -1}, "x_type", "not an axis type"),
        ({0: True}, "x_type", "not an axis type"),
        ({0: "Colour"}, "x_type", "not an axis type"),
        ({0: 2}, "x_type", "'Var. seed' (2) is not supported"),
        ({1: "0-2"}, "x_values", "greater than or equal to 1"),
        ({1: "2-x"}, "x_values", "bad range"),
        ({1: ""}, "x_values", "needs at least one value"),
        ({1: ["2"]}, "x_values", "expected a string"),
        ({3: 4, 4: "2"}, "y_type", "Y and X both use Steps"),
        ({9: "yes"}, "draw_legend", "expected true or false"),
        ({13: True}, "vary_seeds_x", "not supported"),
        ({16: 501}, "margin_size", "0 to 500"),
        ({16: 2.5}, "margin_size", "whole number"),
    ],
)
def test_bad_arguments_are_named_and_nothing_is_changed(change: dict[int, Any], argument: str, needle: str) -> None:
    args = release_args(x=(TXT2IMG.index("Steps"), "2-3"))
    for position, value in change.items():
        args[position] = value
    sent = copy.deepcopy(args)
    with pytest.raises(XyzArgumentError) as caught:
        parse_script_args(args)
    assert caught.value.argument == argument and caught.value.position == _names().index(argument)
    assert needle in str(caught.value) and f"script_args[{caught.value.position}] ({argument})" in str(caught.value)
    assert args == sent  # the request is read, never rewritten


def _names() -> list[str]:
    axes = [f"{letter}_{part}" for letter in "xyz" for part in ("type", "values", "values_dropdown")]
    return [*axes, "draw_legend", "include_lone_images", "include_sub_grids", "no_fixed_seeds", "vary_seeds_x",
            "vary_seeds_y", "vary_seeds_z", "margin_size", "csv_mode"]  # fmt: skip


def test_wrong_shapes() -> None:
    for bad in ({"x_type": 4}, [4, "2"], [0] * 20):
        with pytest.raises(XyzArgumentError) as caught:
            parse_script_args(bad)
        assert caught.value.argument == "script_args" and caught.value.position is None


def test_dev_branch_draw_grid_argument() -> None:
    request = parse_script_args([*release_args(x=(4, "2")), False])
    assert request.draw_grid is False
    assert parse_script_args(release_args(x=(4, "2"))).draw_grid is True


def test_experiment_axes_run_in_a1111s_image_order() -> None:
    # A1111 numbers images x + y*len(X) + z*len(X)*len(Y): Z outermost, X fastest, i.e. axes Z, Y, X.
    args = release_args(x=(4, "2-3"), y=(6, "5, 7"), z=(7, "cat, dog"))
    base = {"prompt": "a cat", "negative_prompt": "", "width": 64, "height": 64, "seed": -1}
    sent = copy.deepcopy(base)
    plot = xyz_experiment(parse_script_args(args), base)
    assert list(plot.axes.items()) == [("prompt_sr", ["cat", "dog"]), ("cfg_scale", [5.0, 7.0]), ("steps", [2, 3])]
    assert plot.base == base == sent and plot.vary_seed is False
    assert xyz_experiment(parse_script_args(release_args(x=(4, "2"), no_fixed_seeds=True)), base).vary_seed


def test_experiment_checks_prompt_sr_and_checkpoints() -> None:
    request = parse_script_args(release_args(x=(7, "dog, cat")))
    with pytest.raises(XyzArgumentError) as caught:
        xyz_experiment(request, {"prompt": "a cat", "negative_prompt": "blurry"})
    assert caught.value.argument == "x_values" and "did not find 'dog'" in str(caught.value)
    assert xyz_experiment(request, {"prompt": "a cat", "negative_prompt": "no dog"}).axes == {
        "prompt_sr": ["dog", "cat"]
    }

    checkpoints = parse_script_args(release_args(y=(11, "tiny-sd [0123abcd], other.safetensors")))
    assert xyz_experiment(checkpoints, {"prompt": "p"}).axes == {"model": ["tiny-sd", "other.safetensors"]}

    def resolve(name: str) -> str:
        if name.startswith("tiny-sd"):
            return "tiny-sd"
        raise ValueError(f"unknown checkpoint {name!r}")

    with pytest.raises(XyzArgumentError) as caught:
        xyz_experiment(checkpoints, {"prompt": "p"}, resolve_checkpoint=resolve)
    assert caught.value.argument == "y_values" and "other.safetensors" in str(caught.value)


def test_experiment_refuses_a_grid_over_the_pixel_budget() -> None:
    request = parse_script_args(release_args(x=(4, "1-100"), y=(1, "1-100")))
    with pytest.raises(XyzArgumentError) as caught:
        xyz_experiment(request, {"prompt": "p", "width": 512, "height": 512})
    assert "10000 images" in str(caught.value) and "megapixels" in str(caught.value)
