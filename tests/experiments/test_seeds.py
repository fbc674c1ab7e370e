"""Seeds of -1: one per experiment (per value of a seed axis), per cell only with vary_seed (A1111's X/Y/Z rules)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cauldrond.experiments.cells import SpecError, expand_cells, resolved_axes_spec
from cauldrond.experiments.seeds import fix_seeds

BASE: dict[str, Any] = {"prompt": "a red fox in snow", "width": 64, "height": 64, "steps": 2}


def draws(*values: int) -> Iterator[int]:
    yield from values
    raise AssertionError("drew more seeds than the test expected")


def drawer(*values: int) -> Any:
    source = draws(*values)
    return lambda: next(source)


def seeds_of(fixed: Any) -> list[int]:
    cells = expand_cells(fixed.base, axes=fixed.axes, cells=fixed.cells, max_cells=100)
    return [cell["seed"] for cell in cells]


@pytest.mark.parametrize("base", [{**BASE, "seed": -1}, BASE], ids=["seed -1", "no seed"])
def test_a_random_seed_is_drawn_once_for_every_cell(base: dict[str, Any]) -> None:
    # The sweep from the issue: a prompt S/R axis and a steps axis, no seed given.
    fixed = fix_seeds(base, {"prompt_sr": "fox,cat,owl", "steps": "2-6 (+2)"}, vary_seed=False, draw=drawer(3389157455))
    assert fixed.seed == 3389157455 and not fixed.vary_seed
    assert seeds_of(fixed) == [3389157455] * 9


def test_a_given_seed_is_kept_and_nothing_is_drawn() -> None:
    fixed = fix_seeds({**BASE, "seed": 42}, {"steps": [2, 3]}, vary_seed=False, draw=drawer())
    assert fixed.seed == 42 and seeds_of(fixed) == [42, 42]


def test_each_minus_one_of_a_seed_axis_is_drawn_once_and_shared_along_the_other_axes() -> None:
    axes = {"seed": "-1, 7, -1", "steps": [2, 3]}
    fixed = fix_seeds(BASE, axes, vary_seed=False, draw=drawer(200, 300))
    # One draw per -1, in order; none for the base, whose seed every cell's axis value replaces.
    assert fixed.axes is not None and fixed.axes["seed"] == [200, 7, 300] and fixed.seed == -1
    assert seeds_of(fixed) == [200, 200, 7, 7, 300, 300]
    assert resolved_axes_spec(fixed.axes)[0] == {"name": "seed", "values": [200, 7, 300]}
    assert axes == {"seed": "-1, 7, -1", "steps": [2, 3]}, "the caller's spec is not changed"


def test_seeds_drawn_for_an_axis_are_distinct_from_each_other_and_from_given_ones() -> None:
    # The draw repeats a given seed and then itself: both are drawn again.
    fixed = fix_seeds({**BASE, "seed": 1}, {"seed": [-1, 7, -1]}, vary_seed=False, draw=drawer(7, 8, 8, 9))
    assert fixed.axes is not None and fixed.axes["seed"] == [8, 7, 9]


def test_explicit_cells_share_the_experiment_seed() -> None:
    cells = [{"steps": 2}, {"steps": 3, "seed": -1}, {"steps": 4, "seed": 9}]
    fixed = fix_seeds(BASE, cells=cells, vary_seed=False, draw=drawer(555))
    assert seeds_of(fixed) == [555, 555, 9]
    assert cells[1]["seed"] == -1, "the caller's cells are not changed"


def test_vary_seed_draws_a_seed_per_cell() -> None:
    fixed = fix_seeds({**BASE, "seed": -1}, {"steps": "1-8"}, vary_seed=True, draw=drawer())
    assert fixed.seed == -1 and fixed.vary_seed
    seeds = seeds_of(fixed)
    # 8 draws from 2^32 values: a repeat would mean the cells were not drawn one by one.
    assert len(set(seeds)) == 8 and all(0 <= seed < 2**32 for seed in seeds)


def test_vary_seed_keeps_given_seeds_and_leaves_a_seed_axis_minus_one_per_cell() -> None:
    fixed = fix_seeds(BASE, {"seed": [-1, 7], "steps": "1-4"}, vary_seed=True, draw=drawer())
    assert fixed.axes is not None and fixed.axes["seed"] == [-1, 7]
    seeds = seeds_of(fixed)
    assert seeds[4:] == [7, 7, 7, 7]
    assert len(set(seeds[:4])) == 4 and 7 not in seeds[:4]
    assert fix_seeds({**BASE, "seed": 3}, vary_seed=True).seed == 3


@pytest.mark.parametrize("bad", [-1.0, True, "-1"])
def test_a_seed_of_the_wrong_type_is_refused_not_replaced(bad: Any) -> None:
    fixed = fix_seeds({**BASE, "seed": bad}, {"steps": [2, 3]}, vary_seed=False, draw=drawer())
    with pytest.raises(SpecError) as caught:
        expand_cells(fixed.base, axes=fixed.axes, max_cells=10)
    assert caught.value.field == "seed"


def test_an_unreadable_seed_axis_names_the_axis() -> None:
    with pytest.raises(SpecError) as caught:
        fix_seeds(BASE, {"seed": "1-x"}, vary_seed=False, draw=drawer(1))
    assert caught.value.field == "seed" and "'seed'" in str(caught.value)
