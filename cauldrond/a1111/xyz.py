"""A1111's X/Y/Z plot script (``script_name: "x/y/z plot"``) read from its positional ``script_args`` and turned
into one experiment whose axes are the plot's Z, Y and X, so the planner batches and groups models as for any
sweep.

The route calls, in order (the grid itself is drawn by :mod:`cauldrond.a1111.xyz_output`)::

    request = parse_script_args(body["script_args"])             # XyzArgumentError -> 422 naming the argument
    plot = xyz_experiment(request, base, resolve_checkpoint=...)  # base: our params dict from translate
    experiment, job_ids = await services.experiments.create(
        name=..., kind="a1111", base=plot.base, axes=plot.axes, vary_seed=plot.vary_seed)   # SpecError -> 422
    # wait; job_ids[i] is cell i: i = ix + iy * len(X) + iz * len(X) * len(Y), A1111's own image order

``script_args`` come in the order of A1111's ``Script.ui`` return value (scripts/xyz_grid.py). Three lengths are
read: 18 (A1111 1.8 to 1.10, the release in use), 19 (A1111's dev branch adds ``draw_grid``) and 11 (the form
from before the value dropdowns, which webuiapi's README still shows, with its own older axis list).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cauldrond.experiments.axes import resolve_axes
from cauldrond.experiments.errors import SpecError
from cauldrond.experiments.values import AXIS_KINDS, PROMPT_SR_AXIS, SIZE_AXIS, parse_size
from cauldrond.media.grid import DEFAULT_MAX_PIXELS

SCRIPT_NAME = "x/y/z plot"  # A1111 compares script names in lower case: "X/Y/Z plot" and "X/Y/Z Plot" both match
SCRIPT_TITLE = "X/Y/Z plot"  # as A1111 writes it into the grid's infotext ("Script: X/Y/Z plot")
NOTHING = "Nothing"

# A1111's txt2img axis types in its own order: scripts/xyz_grid.py ``axis_options`` without the img2img-only
# entries, since ``x_type`` indexes the txt2img tab's filtered list (A1111 1.10; "Size" is last).
A1111_AXES: tuple[str, ...] = (
    NOTHING, "Seed", "Var. seed", "Var. strength", "Steps", "Hires steps", "CFG Scale", "Prompt S/R",
    "Prompt order", "Sampler", "Hires sampler", "Checkpoint name", "Negative Guidance minimum sigma",
    "Sigma Churn", "Sigma min", "Sigma max", "Sigma noise", "Schedule type", "Schedule min sigma",
    "Schedule max sigma", "Schedule rho", "Skip Early CFG", "Beta schedule alpha", "Beta schedule beta", "Eta",
    "Clip skip", "Denoising", "Initial noise multiplier", "Extra noise", "Hires upscaler", "VAE", "Styles",
    "UniPC Order", "Face restore", "Token merging ratio", "Token merging ratio high-res",
    "Always discard next-to-last sigma", "SGM noise multiplier", "Refiner checkpoint", "Refiner switch at",
    "RNG source", "FP8 mode", "Size",
)  # fmt: skip
# The txt2img list of early 2023, which the 11-argument form's indices mean.
LEGACY_AXES: tuple[str, ...] = (
    NOTHING, "Seed", "Var. seed", "Var. strength", "Steps", "Hires steps", "CFG Scale", "Prompt S/R",
    "Prompt order", "Sampler", "Checkpoint name", "Sigma Churn", "Sigma min", "Sigma max", "Sigma noise", "Eta",
    "Clip skip", "Denoising", "Hires upscaler", "VAE", "Styles",
)  # fmt: skip


@dataclass(frozen=True)
class AxisSupport:
    field: str  # our axis name (experiments/axes.py)
    labelled: bool  # A1111 labels a cell "Steps: 20"; unlabelled types show the bare value ("Euler a")
    has_choices: bool = False  # A1111 reads its values from the dropdown list unless csv_mode


# The A1111 axis types our params can vary; every other one is refused by name.
SUPPORTED: dict[str, AxisSupport] = {
    "Seed": AxisSupport("seed", True),
    "Steps": AxisSupport("steps", True),
    "CFG Scale": AxisSupport("cfg_scale", True),
    "Prompt S/R": AxisSupport(PROMPT_SR_AXIS, False),
    "Sampler": AxisSupport("sampler", False, has_choices=True),
    "Checkpoint name": AxisSupport("model", False, has_choices=True),
    "Schedule type": AxisSupport("schedule", True, has_choices=True),
    "Eta": AxisSupport("eta", True),
    "Clip skip": AxisSupport("clip_skip", True),
    "Size": AxisSupport(SIZE_AXIS, True),
}

_AXIS_ARGS = tuple(f"{letter}_{part}" for letter in "xyz" for part in ("type", "values", "values_dropdown"))
RELEASE_ARGS: tuple[str, ...] = (
    *_AXIS_ARGS,
    "draw_legend",
    "include_lone_images",
    "include_sub_grids",
    "no_fixed_seeds",
    "vary_seeds_x",
    "vary_seeds_y",
    "vary_seeds_z",
    "margin_size",
    "csv_mode",
)
DEV_ARGS: tuple[str, ...] = (*RELEASE_ARGS, "draw_grid")
LEGACY_ARGS: tuple[str, ...] = (
    *(f"{letter}_{part}" for letter in "xyz" for part in ("type", "values")),
    "draw_legend",
    "include_lone_images",
    "include_sub_grids",
    "no_fixed_seeds",
    "margin_size",
)
_LAYOUTS = {len(names): names for names in (RELEASE_ARGS, DEV_ARGS, LEGACY_ARGS)}
MAX_MARGIN = 500  # A1111's "Grid margins (px)" slider
_HASH_SUFFIX = re.compile(r"\s*\[[0-9a-fA-F]{8,64}\]$")


class XyzArgumentError(ValueError):
    """A bad ``script_args`` item. ``position`` is its index in script_args (None: the list as a whole)."""

    def __init__(self, message: str, *, argument: str, position: int | None) -> None:
        where = "script_args" if position is None else f"script_args[{position}] ({argument})"
        super().__init__(f"{where}: {message}")
        self.argument = argument
        self.position = position


@dataclass(frozen=True)
class PlotAxis:
    letter: str  # "X", "Y" or "Z"
    type_index: int  # as sent
    label: str  # A1111's name of the type: "Steps"
    text: str  # the values as A1111 writes them into the grid's infotext ("X Values")
    values: tuple[Any, ...]  # parsed and range-expanded; empty for Nothing
    argument: str = ""  # the script_args item the values came from ("x_values" or "x_values_dropdown")
    position: int | None = None  # its index in script_args

    @property
    def field(self) -> str | None:
        return SUPPORTED[self.label].field if self.label in SUPPORTED else None


@dataclass(frozen=True)
class XyzRequest:
    x: PlotAxis
    y: PlotAxis
    z: PlotAxis
    draw_legend: bool
    include_lone_images: bool
    include_sub_grids: bool
    no_fixed_seeds: bool  # "Keep -1 for seeds"
    margin_size: int
    draw_grid: bool = True


@dataclass(frozen=True)
class XyzExperiment:
    """What to create: ``services.experiments.create(kind="a1111", base=base, axes=axes, vary_seed=vary_seed)``."""

    request: XyzRequest
    base: dict[str, Any]
    axes: dict[str, list[Any]]  # Z, Y, X (outermost first; Nothing left out): cell order is A1111's image order
    vary_seed: bool


def parse_script_args(script_args: Any) -> XyzRequest:
    """Read the plot's positional arguments; XyzArgumentError names the one at fault."""
    if not isinstance(script_args, list | tuple):
        raise XyzArgumentError(
            f"must be a list, got {type(script_args).__name__}", argument="script_args", position=None
        )
    names = _LAYOUTS.get(len(script_args))
    if names is None:
        raise XyzArgumentError(
            f"the X/Y/Z plot takes 18 arguments ({', '.join(RELEASE_ARGS)}), 19 (the same and draw_grid, as "
            f"A1111's dev branch sends) or 11 (the older {', '.join(LEGACY_ARGS)}); got {len(script_args)}",
            argument="script_args",
            position=None,
        )
    reader = _Args(names, script_args)
    legacy = names is LEGACY_ARGS
    csv_mode = True if legacy else reader.flag("csv_mode")
    table = LEGACY_AXES if legacy else A1111_AXES
    x, y, z = (_axis(reader, letter, table, csv_mode) for letter in "xyz")
    seen: dict[str, PlotAxis] = {}
    for axis in (x, y, z):
        if axis.field is None:
            continue
        if axis.field in seen:
            raise reader.error(
                f"{axis.letter.lower()}_type",
                f"{axis.letter} and {seen[axis.field].letter} both use {axis.label}; one plot varies each type "
                "on one axis",
            )
        seen[axis.field] = axis
    for letter in "xyz" if not legacy else "":
        if reader.flag(f"vary_seeds_{letter}"):
            raise reader.error(
                f"vary_seeds_{letter}",
                "varying seeds along an axis is not supported; put the seeds on an axis of type Seed instead",
            )
    return XyzRequest(
        x=x,
        y=y,
        z=z,
        draw_legend=reader.flag("draw_legend"),
        include_lone_images=reader.flag("include_lone_images"),
        include_sub_grids=reader.flag("include_sub_grids"),
        no_fixed_seeds=reader.flag("no_fixed_seeds"),
        margin_size=reader.margin(),
        draw_grid=reader.flag("draw_grid") if "draw_grid" in names else True,
    )


def xyz_experiment(
    request: XyzRequest,
    base: Mapping[str, Any],
    *,
    resolve_checkpoint: Callable[[str], str] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> XyzExperiment:
    """The experiment for ``request`` over ``base`` (our params, as translate makes them). ``resolve_checkpoint``
    turns an A1111 checkpoint name ("model.safetensors [6ce0161689]") into our model name and raises ValueError
    for an unknown one; without it a trailing " [hash]" is dropped. Raises XyzArgumentError."""
    axes: dict[str, list[Any]] = {}
    for axis in (request.z, request.y, request.x):
        if axis.field is None:
            continue
        values = list(axis.values)
        if axis.field == "model":
            values = [_checkpoint(str(value), resolve_checkpoint, axis) for value in values]
        if axis.field == PROMPT_SR_AXIS:
            texts = (str(base.get("prompt", "")), str(base.get("negative_prompt", "")))
            if not any(values[0] in text for text in texts):
                raise XyzArgumentError(
                    f"Prompt S/R did not find {values[0]!r} in the prompt or the negative prompt (the first value "
                    "is the text to search for)",
                    argument=axis.argument,
                    position=axis.position,
                )
        axes[axis.field] = values
    width, height = _largest_size(base, axes)
    cells = math.prod(len(values) for values in axes.values())
    if cells * width * height > max_pixels:
        raise XyzArgumentError(
            f"{cells} images of up to {width}x{height} would make a grid over {max_pixels / 1e6:.0f} megapixels; "
            "use fewer values",
            argument="script_args",
            position=None,
        )
    return XyzExperiment(request, dict(base), axes, vary_seed=request.no_fixed_seeds)


def axis_label(axis: PlotAxis, value: Any) -> str:
    """A cell's label as A1111 draws it: "Steps: 20", "CFG Scale: 7.5", the bare value for Prompt S/R, Sampler
    and Checkpoint name, nothing for Nothing."""
    support = SUPPORTED.get(axis.label)
    if support is None:
        return ""
    if isinstance(value, float):
        value = round(value, 8)  # A1111 rounds, so 0.1 + 0.2 reads 0.3
    if axis.label == "Checkpoint name":
        value = str(value).replace("\\", "/").rsplit("/", 1)[-1]
    return f"{axis.label}: {value}" if support.labelled else str(value)


class _Args:
    def __init__(self, names: tuple[str, ...], values: Sequence[Any]) -> None:
        self.names = names
        self.values = dict(zip(names, values, strict=True))

    def error(self, name: str, message: str) -> XyzArgumentError:
        return XyzArgumentError(message, argument=name, position=self.names.index(name))

    def flag(self, name: str) -> bool:
        # JSON true/false; webuiapi's README sends the strings "True"/"False", read here by what they say.
        value = self.values[name]
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise self.error(name, f"expected true or false, got {value!r}")

    def margin(self) -> int:
        value = self.values["margin_size"]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MARGIN:
            raise self.error("margin_size", f"expected a whole number of pixels from 0 to {MAX_MARGIN}, got {value!r}")
        return value


def _axis(reader: _Args, letter: str, table: tuple[str, ...], csv_mode: bool) -> PlotAxis:
    type_name = f"{letter}_type"
    index = _type_index(reader, type_name, table)
    label = table[index]
    if label == NOTHING:
        return PlotAxis(letter.upper(), index, label, "", ())
    support = SUPPORTED.get(label)
    if support is None:
        supported = ", ".join(f"{name} ({table.index(name)})" for name in SUPPORTED if name in table)
        raise reader.error(type_name, f"axis type {label!r} ({index}) is not supported; supported: {supported}")
    values_name = f"{letter}_values"
    dropdown = reader.values.get(f"{letter}_values_dropdown")
    if support.has_choices and not csv_mode and dropdown:
        # A1111 takes a choice axis's values from the dropdown unless csv_mode; the text box is the fallback
        # here (A1111 would plot nothing), so a client that fills in only the text still gets its plot.
        if not isinstance(dropdown, list) or not all(isinstance(item, str) for item in dropdown):
            raise reader.error(f"{letter}_values_dropdown", f"expected a list of strings, got {dropdown!r}")
        raw: list[str] | str = [item.strip() for item in dropdown]
        text = _csv_line(raw)
        values_name = f"{letter}_values_dropdown"
    else:
        value = reader.values[values_name]
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise reader.error(values_name, f"expected a string of values such as '1-5' or 'a, b', got {value!r}")
        text = value
        raw = _without_blank_items(value) if AXIS_KINDS[support.field] in ("int", "float") else value
    if not raw or raw == [""]:
        raise reader.error(values_name, f"{label} needs at least one value")
    try:
        (resolved,) = resolve_axes({support.field: raw})
    except SpecError as exc:
        raise reader.error(values_name, f"{label}: {exc}") from exc
    position = reader.names.index(values_name)
    return PlotAxis(letter.upper(), index, label, text, resolved.values, values_name, position)


def _type_index(reader: _Args, name: str, table: tuple[str, ...]) -> int:
    value = reader.values[name]
    if value is None or value == "":
        return 0  # A1111 reads a missing type as Nothing ("x_type or 0")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, str):  # a type's name instead of its index: accepted, as a convenience
        by_name = {label.lower(): index for index, label in enumerate(table)}
        if value.strip().lower() in by_name:
            return by_name[value.strip().lower()]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(table):
        return value
    raise reader.error(name, f"{value!r} is not an axis type: give an index from 0 ({NOTHING}) to {len(table) - 1}")


def _without_blank_items(text: str) -> str:
    # A1111 skips empty items of a number axis ("1, 2,"); the shared parser would call them an error.
    items = [item.strip() for row in csv.reader(io.StringIO(text), skipinitialspace=True) for item in row]
    return ", ".join(item for item in items if item)


def _csv_line(items: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(items)
    return buffer.getvalue().strip()


def _checkpoint(name: str, resolve: Callable[[str], str] | None, axis: PlotAxis) -> str:
    if resolve is None:
        return _HASH_SUFFIX.sub("", name)
    try:
        return resolve(name)
    except ValueError as exc:
        raise XyzArgumentError(f"Checkpoint name: {exc}", argument=axis.argument, position=axis.position) from exc


def _largest_size(base: Mapping[str, Any], axes: Mapping[str, Sequence[Any]]) -> tuple[int, int]:
    if SIZE_AXIS in axes:
        sizes = [parse_size(SIZE_AXIS, value) for value in axes[SIZE_AXIS]]
        return max(w for w, _ in sizes), max(h for _, h in sizes)
    width, height = base.get("width", 512), base.get("height", 512)
    return (width if isinstance(width, int) else 512), (height if isinstance(height, int) else 512)
