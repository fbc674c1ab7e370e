"""The duration model behind experiments.plan, checked against hand calculations from recorded timings."""

from __future__ import annotations

import pytest

from cauldrond.experiments.estimates import (
    PlannedBatch,
    Timing,
    evaluations,
    fit_cost_model,
    planned_batches,
    recorded_batches,
)
from cauldrond.experiments.planner import estimate_seconds


def at(second: float) -> str:
    return f"2026-11-30T07:00:{second:06.3f}+00:00"


def batch_rows(experiment: int, committed: float, images: int, seconds: float, **params: object) -> list[Timing]:
    """The image rows one batch leaves: each image records its share of the batch's provider time."""
    values: dict[str, object] = {"model": "m", "steps": 10, "width": 64, "height": 64, "sampler": "Euler"}
    values.update(params)
    return [
        Timing(
            wall_time_s=seconds / images,
            batch_size=images,
            experiment_id=experiment,
            created_at=at(committed + n * 0.001),
            **values,  # type: ignore[arg-type]
        )
        for n in range(images)
    ]


def test_second_order_samplers_count_two_evaluations_per_step_but_the_last() -> None:
    assert [evaluations(s, 8) for s in ("Euler", "Heun", "DPM2", "DPM2 a", "DPM++ SDE", "DPM++ 2M")] == [
        8,
        15,
        15,
        15,
        15,
        8,
    ]


def test_batches_are_rebuilt_from_image_rows() -> None:
    rows = batch_rows(1, 10.0, 4, 2.0) + batch_rows(1, 13.0, 4, 2.0) + batch_rows(2, 20.0, 1, 0.7, steps=4)
    batches = recorded_batches(list(reversed(rows)))  # the store lists newest first
    assert [(b.experiment_id, b.images, b.seconds, b.steps) for b in batches] == [
        (1, 4, 2.0, 10),
        (1, 4, 2.0, 10),
        (2, 1, 0.7, 4),
    ]


def test_fitted_exponents_follow_history_that_varies() -> None:
    # Batches made exactly by seconds = 5 * evals**0.7 * images**0.3 * (pixels/4096)**0.9, each its own experiment.
    history: list[Timing] = []
    experiment = 0
    for steps in (2, 4, 8):
        for images in (1, 4):
            for side in (64, 128):
                experiment += 1
                seconds = 5 * steps**0.7 * images**0.3 * ((side * side) / 4096) ** 0.9
                history += batch_rows(experiment, 0.0, images, seconds, steps=steps, width=side, height=side)
    model = fit_cost_model(recorded_batches(history))
    assert model.exponents == pytest.approx((0.7, 0.3, 0.9), abs=0.02)
    assert model.overhead_s == 0.0  # no two batches ran back to back
    # A shape outside the history: 16 steps, a batch of 2 at 96x96.
    predicted = model.batch_seconds(PlannedBatch("m", "Euler", 16, 96 * 96, 2))
    assert predicted == pytest.approx(5 * 16**0.7 * 2**0.3 * (9216 / 4096) ** 0.9, rel=0.05)


def test_overhead_is_the_time_between_back_to_back_batches_beyond_the_providers() -> None:
    # Two batches of one experiment: the second committed 2.5 s after the first and took 2.0 s in the provider.
    history = batch_rows(1, 10.0, 4, 2.0) + batch_rows(1, 12.5, 4, 2.0)
    model = fit_cost_model(recorded_batches(history))
    assert model.overhead_s == pytest.approx(0.5, abs=0.005)
    # Planned: the same batch twice -> 2 * (2.0 + 0.5).
    cell = {"model": "m", "sampler": "Euler", "schedule": "Automatic", "steps": 10, "width": 64, "height": 64}
    cells = [dict(cell, seed=n) for n in range(8)]
    seconds, _ = estimate_seconds(cells, history, max_batch_size=4, loaded_model="m")
    assert seconds == pytest.approx(5.0, abs=0.05)


def test_model_loads_are_priced_when_a_load_time_is_known() -> None:
    history = batch_rows(1, 10.0, 1, 1.0)
    cells = [{"model": "m", "sampler": "Euler", "schedule": "Automatic", "steps": 10, "width": 64, "height": 64}]
    assert estimate_seconds(cells, history, 4, loaded_model="m", load_seconds=3.0) == (
        1.0,
        "fitted to 1 recent images on this machine, batch by batch",
    )
    seconds, basis = estimate_seconds(cells, history, 4, loaded_model=None, load_seconds=3.0)
    assert seconds == 4.0 and "1 model load(s) at 3.0 s" in basis
    seconds, basis = estimate_seconds(cells, history, 4, loaded_model=None)
    assert seconds == 1.0 and "not priced" in basis


def test_planned_batches_split_at_a_new_key_and_at_the_batch_limit() -> None:
    cells = [{"model": "m", "sampler": "Euler", "steps": 4, "width": 64, "height": 64}] * 5
    cells += [{"model": "m", "sampler": "Heun", "steps": 4, "width": 64, "height": 64}]
    keys = ["k"] * 5 + ["heun"]
    assert [(b.sampler, b.images) for b in planned_batches(cells, keys, 2)] == [
        ("Euler", 2),
        ("Euler", 2),
        ("Euler", 1),
        ("Heun", 1),
    ]
