"""Seeds of -1: one random seed per experiment, as AUTOMATIC1111's X/Y/Z plot does.

A comparison grid says something only when its cells share the starting noise, so a seed of -1 (or none) is
drawn once for the whole experiment and every cell uses it. A seed axis keeps the values it was given; each -1
in it is drawn once (a different seed per -1), and that seed is shared by every cell on that row or column, as
A1111 fixes a Seed axis's -1 values before the grid runs. ``vary_seed`` is A1111's "Keep -1 for seeds": every
-1 stays -1 here and each cell draws its own seed when it is expanded.

Seeds given as numbers are never touched, with or without ``vary_seed``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cauldrond.experiments.values import parse_axis_values
from cauldrond.params import MAX_SEED, RANDOM_SEED

SEED_AXIS = "seed"
SeedDraw = Callable[[], int]


def draw_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


@dataclass(frozen=True)
class FixedSeeds:
    """An experiment's base, axes and cells with their -1 seeds resolved (unless ``vary_seed``)."""

    base: dict[str, Any]
    axes: dict[str, Any] | None
    cells: list[dict[str, Any]] | None
    # The seed of every cell that has no other: drawn once or given; -1 when each cell draws its own (vary_seed) or
    # when a seed axis sets every cell's seed.
    seed: int
    vary_seed: bool


def is_random(value: Any) -> bool:
    # Exactly the int -1: a float -1.0 or a bool must reach validation and be refused there, not be replaced.
    return type(value) is int and value == RANDOM_SEED


def fix_seeds(
    base: Mapping[str, Any],
    axes: Mapping[str, Sequence[Any] | str] | None = None,
    cells: Sequence[Mapping[str, Any]] | None = None,
    *,
    vary_seed: bool = False,
    draw: SeedDraw = draw_seed,
) -> FixedSeeds:
    """Resolve the -1 seeds of an experiment spec before its cells are expanded. Raises SpecError when a seed
    axis's values cannot be read (the same error resolving the axes would give)."""
    fixed_base = dict(base)
    given = fixed_base.get("seed", RANDOM_SEED)
    fixed_axes = dict(axes) if axes is not None else None
    fixed_cells = [dict(cell) for cell in cells] if cells is not None else None
    if vary_seed:
        return FixedSeeds(fixed_base, fixed_axes, fixed_cells, given if type(given) is int else RANDOM_SEED, True)

    seed = given
    if fixed_axes and SEED_AXIS in fixed_axes:
        # The axis sets every cell's seed; a base seed would be drawn for nothing and recorded misleadingly.
        fixed_axes[SEED_AXIS] = _fixed_axis(fixed_axes[SEED_AXIS], draw)
    elif is_random(given):
        seed = draw()
        fixed_base["seed"] = seed
    if fixed_cells:
        for cell in fixed_cells:
            if is_random(cell.get("seed")):
                cell["seed"] = seed
    return FixedSeeds(fixed_base, fixed_axes, fixed_cells, seed if type(seed) is int else RANDOM_SEED, False)


def _fixed_axis(raw: Any, draw: SeedDraw) -> Any:
    if not isinstance(raw, str | list | tuple):
        return raw  # resolving the axes reports the wrong type with the axis's name
    values = parse_axis_values(SEED_AXIS, raw)
    taken = {value for value in values if not is_random(value)}
    fixed = []
    for value in values:
        if is_random(value):
            # Distinct, so "-1, -1, -1" always means three different starting noises.
            value = draw()
            while value in taken:
                value = draw()
            taken.add(value)
        fixed.append(value)
    return fixed
