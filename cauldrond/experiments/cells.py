"""Turning an experiment spec into validated cells. Pure functions: no store, no provider."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from cauldrond.params import MAX_SEED, RANDOM_SEED, GenerationParams


class SpecError(ValueError):
    """The spec is invalid; ``field`` and ``value`` name the axis or cell at fault."""

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value

    def to_data(self) -> dict[str, Any]:
        return {"field": self.field, "value": self.value}


def expand_cells(
    base: Mapping[str, Any],
    *,
    axes: Mapping[str, Sequence[Any]] | None = None,
    cells: Sequence[Mapping[str, Any]] | None = None,
    max_cells: int,
) -> list[dict[str, Any]]:
    """Cells as params dicts: the cartesian product of ``axes`` over ``base`` (first axis outermost), or each of
    ``cells`` merged over ``base``. Every cell is validated; random seeds are drawn here, so a cell's seed is
    fixed from the moment it is queued and survives restarts."""
    if axes and cells:
        raise SpecError("give either axes or cells, not both")
    if axes:
        for name, values in axes.items():
            if name not in GenerationParams.model_fields:
                raise SpecError(f"unknown axis {name!r}", field=name)
            if not isinstance(values, Sequence) or isinstance(values, str | bytes) or not values:
                raise SpecError(f"axis {name!r} needs a non-empty list of values", field=name, value=values)
        count = 1
        for values in axes.values():
            count *= len(values)
        _check_count(count, max_cells)
        names = list(axes)
        raw = [dict(base, **dict(zip(names, combo, strict=True))) for combo in itertools.product(*axes.values())]
    elif cells:
        _check_count(len(cells), max_cells)
        raw = [dict(base, **cell) for cell in cells]
    else:
        raw = [dict(base)]
    return [_validated(cell, axes) for cell in raw]


def _check_count(count: int, max_cells: int) -> None:
    if count > max_cells:
        raise SpecError(f"the experiment has {count} cells, over the limit of {max_cells}", value=count)


def _validated(cell: dict[str, Any], axes: Mapping[str, Sequence[Any]] | None) -> dict[str, Any]:
    try:
        params = GenerationParams.model_validate(cell, strict=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or None
        origin = "axis" if axes and field in axes else "parameter"
        value = cell.get(field) if field else None
        raise SpecError(f"{origin} {field!r}: {error['msg']} (value {value!r})", field=field, value=value) from exc
    if params.seed == RANDOM_SEED:
        params = params.with_seed(secrets.randbelow(MAX_SEED + 1))
    return params.to_json_dict()
