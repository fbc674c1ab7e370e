"""Axes: a name and its resolved values, how a value is applied to a cell, and where a cell sits in the product."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cauldrond.experiments.errors import SpecError
from cauldrond.experiments.lora_axes import LORA_AXES, apply_lora_axis, check_axis_value
from cauldrond.experiments.values import PROMPT_SR_AXIS, SIZE_AXIS, parse_axis_values, parse_size
from cauldrond.params import GenerationParams
from cauldrond.suggestions import unknown

# A field holding a list (loras) is no axis of its own: its axes are lora and lora_weight (lora_axes.py).
AXIS_NAMES: tuple[str, ...] = (
    *(name for name, info in GenerationParams.model_fields.items() if isinstance(info.annotation, type)),
    SIZE_AXIS,
    PROMPT_SR_AXIS,
    *LORA_AXES,
)
# Axes that write the same field would make the result depend on axis order.
_OVERLAPS = {SIZE_AXIS: ("width", "height")}


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple[Any, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values)}


def resolve_axes(axes: Mapping[str, Sequence[Any] | str]) -> list[Axis]:
    """Each axis with its values parsed and checked against GenerationParams, in the order given."""
    resolved: list[Axis] = []
    for name, raw in axes.items():
        if name not in AXIS_NAMES:
            hint = unknown("axis", str(name), AXIS_NAMES, None)
            raise SpecError(
                f"{hint.message()}; valid axes: {', '.join(AXIS_NAMES)}", field=name, value=name, **hint.error_data()
            )
        if not isinstance(raw, str | list | tuple):
            raise SpecError(
                f"axis {name!r}: give a list of values or a string such as '1-5', got {type(raw).__name__}",
                field=name,
                value=raw,
            )
        values = parse_axis_values(name, raw)
        if name in GenerationParams.model_fields:
            _check_field_values(name, values)
        if name in LORA_AXES:
            for value in dict.fromkeys(values):
                check_axis_value(name, value)
        if name == PROMPT_SR_AXIS and values[0] == "":
            raise SpecError(
                f"axis {name!r}: the first value is the text to search for and must not be empty", field=name, value=""
            )
        resolved.append(Axis(name, tuple(values)))
    for name, fields in _OVERLAPS.items():
        clash = [field for field in fields if name in axes and field in axes]
        if clash:
            raise SpecError(f"axes {name!r} and {clash[0]!r} both set {clash[0]}; use one", field=name)
    return resolved


def _check_field_values(name: str, values: Sequence[Any]) -> None:
    # Checked per distinct value here so the error names the value, not the first cell that holds it.
    for value in dict.fromkeys(values):
        try:
            GenerationParams.model_validate({"prompt": "", name: value}, strict=True)
        except ValidationError as exc:
            message = exc.errors()[0]["msg"]
            raise SpecError(f"axis {name!r}: value {value!r}: {message}", field=name, value=value) from exc


def apply_axis(cell: dict[str, Any], axis: Axis, value: Any, axis_names: Sequence[str] = ()) -> None:
    """Set ``value`` of ``axis`` on ``cell``. Prompt S/R (A1111): the axis's first value is searched for in the
    prompt and negative prompt and replaced by ``value``; SpecError if neither holds it. The LoRA axes act on the
    cell's LoRAs (lora_axes.py), so they go after the prompt's tags have been taken out."""
    if axis.name in LORA_AXES:
        apply_lora_axis(cell, axis.name, value, axis_names)
    elif axis.name == SIZE_AXIS:
        cell["width"], cell["height"] = parse_size(axis.name, value)
    elif axis.name == PROMPT_SR_AXIS:
        search = axis.values[0]
        prompt, negative = cell.get("prompt", ""), cell.get("negative_prompt", "")
        texts = [text for text in (prompt, negative) if isinstance(text, str)]
        if not any(search in text for text in texts):
            raise SpecError(
                f"axis {PROMPT_SR_AXIS!r}: search text {search!r} is in neither the prompt nor the negative prompt",
                field=PROMPT_SR_AXIS,
                value=search,
            )
        if isinstance(prompt, str):
            cell["prompt"] = prompt.replace(search, value)
        if isinstance(negative, str):
            cell["negative_prompt"] = negative.replace(search, value)
    else:
        cell[axis.name] = value


def cell_count(axes: Sequence[Axis]) -> int:
    return math.prod(len(axis.values) for axis in axes)


def coordinates(index: int, axes: Sequence[Axis]) -> tuple[int, ...]:
    """The value index on each axis of cell ``index``: mixed radix, first axis outermost (itertools.product)."""
    if not 0 <= index < cell_count(axes):
        raise IndexError(f"cell {index} is outside 0..{cell_count(axes) - 1}")
    coords: list[int] = []
    for axis in reversed(axes):
        index, coord = divmod(index, len(axis.values))
        coords.append(coord)
    return tuple(reversed(coords))


def index_of(coords: Sequence[int], axes: Sequence[Axis]) -> int:
    """The cell index at ``coords``; the inverse of :func:`coordinates`."""
    if len(coords) != len(axes):
        raise ValueError(f"{len(coords)} coordinates for {len(axes)} axes")
    index = 0
    for coord, axis in zip(coords, axes, strict=True):
        if not 0 <= coord < len(axis.values):
            raise IndexError(f"coordinate {coord} is outside axis {axis.name!r} of {len(axis.values)} values")
        index = index * len(axis.values) + coord
    return index
