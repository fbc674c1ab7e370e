import itertools

import pytest

from cauldrond.experiments.planner import Timing, estimate_seconds, in_run_order, plan_cost, plan_order


def product(**axes: list[object]) -> list[dict[str, object]]:
    base = {
        "prompt": "p",
        "model": "m",
        "sampler": "Euler",
        "schedule": "Automatic",
        "steps": 10,
        "width": 64,
        "height": 64,
        "clip_skip": 1,
        "eta": 0.0,
        "cfg_scale": 7.0,
        "seed": 1,
    }
    return [dict(base, **dict(zip(axes, combo, strict=True))) for combo in itertools.product(*axes.values())]


def test_models_on_the_innermost_axis_still_load_once_each() -> None:
    cells = product(seed=[1, 2, 3, 4], model=["a", "b", "c"])
    ordered = in_run_order(cells, plan_order(cells))
    assert [c["model"] for c in ordered] == ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    assert plan_cost(ordered, max_batch_size=8).model_loads == 3
    naive = plan_cost(cells, max_batch_size=8)
    assert naive.model_loads == 12  # what running in axis order would cost


def test_the_loaded_model_goes_first() -> None:
    cells = product(model=["a", "b"])
    ordered = in_run_order(cells, plan_order(cells, loaded_model="b"))
    assert [c["model"] for c in ordered] == ["b", "a"]
    assert plan_cost(ordered, 4, loaded_model="b").model_loads == 1


def test_batchable_cells_become_adjacent_and_cfg_or_seed_do_not_split_batches() -> None:
    cells = product(steps=[10, 20], cfg_scale=[3.0, 7.0], sampler=["Euler", "DDIM"], seed=[1, 2])
    ordered = in_run_order(cells, plan_order(cells))
    # 4 batch keys (steps x sampler), each holding 4 cells (cfg x seed).
    assert plan_cost(ordered, max_batch_size=4).batches == 4
    assert plan_cost(ordered, max_batch_size=2).batches == 8
    assert plan_cost(cells, max_batch_size=4).batches > 4
    # Inside a group the axes' own order is kept.
    first_group = [(c["cfg_scale"], c["seed"]) for c in ordered[:4]]
    assert first_group == [(3.0, 1), (3.0, 2), (7.0, 1), (7.0, 2)]


def test_order_is_a_permutation() -> None:
    cells = product(model=["b", "a"], steps=[1, 2, 3], seed=[5, 6])
    order = plan_order(cells)
    assert sorted(order) == list(range(len(cells)))


def test_estimate_prices_each_planned_batch_per_model() -> None:
    # One recorded batch per model (4 images of 10 Euler steps at 64x64): with nothing varied, the exponents stay
    # at their priors (evals 1, batch size 0.6, pixels 0.8) and each model's scale comes from its own batch.
    history = [Timing("a", 10, 64, 64, 0.5, "Euler", 4, 1, f"2026-11-30T07:00:0{i}.000+00:00") for i in range(4)]
    history += [Timing("b", 10, 64, 64, 2.5, "Euler", 4, 2, f"2026-11-30T07:01:0{i}.000+00:00") for i in range(4)]
    cells = product(model=["a", "b", "c"], seed=[1, 2])
    seconds, basis = estimate_seconds(in_run_order(cells, plan_order(cells)), history, max_batch_size=4)
    # a: a batch of 2 at 2.0 s * (2/4)**0.6; b: 10.0 s * (2/4)**0.6; c has no history: the median of a and b.
    a, b = 2.0 * 0.5**0.6, 10.0 * 0.5**0.6
    assert seconds == pytest.approx(a + b + (a + b) / 2, abs=0.05)
    assert "fitted to 8 recent images" in basis
    assert estimate_seconds(cells, [], max_batch_size=4) == (None, "no images generated on this machine yet")
