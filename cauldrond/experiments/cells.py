"""Turning an experiment spec into validated cells. Pure functions: no store, no provider."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from cauldrond.experiments.axes import Axis, apply_axis, cell_count, resolve_axes
from cauldrond.experiments.errors import SpecError
from cauldrond.experiments.lora_axes import LORA_AXES, take_prompt_loras
from cauldrond.experiments.values import PROMPT_SR_AXIS, SIZE_AXIS
from cauldrond.params import MAX_SEED, RANDOM_SEED, GenerationParams

__all__ = ["SpecError", "expand_cells", "expand_params", "resolved_axes_spec"]

# Which axis to blame when a field it writes fails validation.
_WRITTEN_BY = {"width": SIZE_AXIS, "height": SIZE_AXIS, "prompt": PROMPT_SR_AXIS, "negative_prompt": PROMPT_SR_AXIS}


def expand_cells(
    base: Mapping[str, Any],
    *,
    axes: Mapping[str, Sequence[Any] | str] | None = None,
    cells: Sequence[Mapping[str, Any]] | None = None,
    max_cells: int,
) -> list[dict[str, Any]]:
    """``expand_params`` as params dicts (JSON-safe, as stored)."""
    return [params.to_json_dict() for params in expand_params(base, axes=axes, cells=cells, max_cells=max_cells)]


def expand_params(
    base: Mapping[str, Any],
    *,
    axes: Mapping[str, Sequence[Any] | str] | None = None,
    cells: Sequence[Mapping[str, Any]] | None = None,
    max_cells: int,
) -> list[GenerationParams]:
    """The cells: the cartesian product of ``axes`` over ``base`` (first axis outermost), or each of ``cells``
    merged over ``base``. Axis values may be lists or A1111 range/CSV strings. Every cell is validated, here and
    only here: the typed params travel with the queued job to the provider. Random seeds are drawn here, so a
    cell's seed is fixed from the moment it is queued and survives restarts."""
    if axes and cells:
        raise SpecError("give either axes or cells, not both")
    if axes:
        resolved = resolve_axes(axes)
        # Before a single cell exists: a 10^9-cell spec must fail as fast as a 10-cell one.
        _check_count(cell_count(resolved), max_cells)
        names = [axis.name for axis in resolved]
        return [_validated(cell, names) for cell in _product(base, resolved)]
    if cells:
        _check_count(len(cells), max_cells)
        return [_validated(dict(base, **cell), [], index) for index, cell in enumerate(cells)]
    return [_validated(dict(base), [])]


def resolved_axes_spec(axes: Mapping[str, Sequence[Any] | str]) -> list[dict[str, Any]]:
    """The axes with their values resolved (ranges expanded, types fixed), JSON-safe, in the order given."""
    return [axis.to_dict() for axis in resolve_axes(axes)]


def _product(base: Mapping[str, Any], axes: list[Axis]) -> Iterator[dict[str, Any]]:
    # Prompt S/R goes after the other axes so it edits the prompt another axis chose, whatever the axis order;
    # then the prompt's <lora:...> tags become the cell's LoRAs, which the lora axes act on last.
    order = sorted(range(len(axes)), key=lambda i: axes[i].name == PROMPT_SR_AXIS)
    lora_order = [i for i in order if axes[i].name in LORA_AXES]
    names = [axis.name for axis in axes]
    for combo in itertools.product(*(axis.values for axis in axes)):
        cell = dict(base)
        for i in order:
            if axes[i].name not in LORA_AXES:
                apply_axis(cell, axes[i], combo[i])
        take_prompt_loras(cell)
        for i in lora_order:
            apply_axis(cell, axes[i], combo[i], names)
        yield cell


def _check_count(count: int, max_cells: int) -> None:
    if count > max_cells:
        raise SpecError(f"the experiment has {count} cells, over the limit of {max_cells}", value=count)


def _validated(cell: dict[str, Any], axis_names: list[str], index: int | None = None) -> GenerationParams:
    take_prompt_loras(cell)  # a no-op where _product took them already
    try:
        params = GenerationParams.model_validate(cell, strict=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or None
        value = cell.get(field) if field else None
        origin = "parameter"
        if field in axis_names:
            origin = "axis"
        elif field in _WRITTEN_BY and _WRITTEN_BY[field] in axis_names:
            origin = f"axis {_WRITTEN_BY[field]!r} sets"
        where = f"cell {index}: " if index is not None else ""
        message = f"{where}{origin} {field!r}: {error['msg']} (value {_shown(value)})"
        raise SpecError(message, field=field, value=value) from exc
    if params.seed == RANDOM_SEED:
        params = params.with_seed(secrets.randbelow(MAX_SEED + 1))
    return params


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
