"""The planner: the order an experiment's cells run in, and what that order costs.

Whatever order the user's axes produce, cells are grouped so that each model loads once (the one already loaded
goes first) and cells that can share a denoising batch sit side by side, where the queue's ``take_batch`` joins
them. Inside a group the axes' own order is kept, so progress still reads naturally.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cauldrond.experiments.estimates import (
    BatchSize,
    PlannedBatch,
    Timing,
    fit_cost_model,
    planned_batches,
    recorded_batches,
)
from cauldrond.queue.batching import cell_batch_key

__all__ = ["PlanCost", "Timing", "estimate_seconds", "in_run_order", "plan_cost", "plan_order"]


def plan_order(cells: Sequence[Mapping[str, Any]], loaded_model: str | None = None) -> list[int]:
    """``order[i]`` is the run position of cell ``i``."""
    model_rank: dict[str, int] = {}
    if loaded_model is not None and any(cell["model"] == loaded_model for cell in cells):
        model_rank[loaded_model] = 0
    key_rank: dict[Any, int] = {}
    for cell in cells:
        model_rank.setdefault(cell["model"], len(model_rank))
        key_rank.setdefault(cell_batch_key(cell), len(key_rank))
    running = sorted(
        range(len(cells)), key=lambda i: (model_rank[cells[i]["model"]], key_rank[cell_batch_key(cells[i])], i)
    )
    order = [0] * len(cells)
    for position, index in enumerate(running):
        order[index] = position
    return order


def in_run_order(cells: Sequence[Mapping[str, Any]], order: Sequence[int]) -> list[Mapping[str, Any]]:
    ordered: list[Mapping[str, Any]] = [{}] * len(cells)
    for index, position in enumerate(order):
        ordered[position] = cells[index]
    return ordered


@dataclass(frozen=True)
class PlanCost:
    model_loads: int
    batches: int


def plan_cost(
    ordered: Sequence[Mapping[str, Any]], max_batch_size: BatchSize, loaded_model: str | None = None
) -> PlanCost:
    """Model loads and batches the engine will use for cells run in this order, as the queue batches them:
    adjacent cells with one batch key, up to ``max_batch_size``."""
    batches = planned_batches(ordered, [cell_batch_key(cell) for cell in ordered], max_batch_size)
    return PlanCost(model_loads=_model_loads(batches, loaded_model), batches=len(batches))


def _model_loads(batches: Sequence[PlannedBatch], loaded_model: str | None) -> int:
    loads = 0
    current = loaded_model
    for batch in batches:
        if batch.model != current:
            loads += 1
            current = batch.model
    return loads


def estimate_seconds(
    ordered: Sequence[Mapping[str, Any]],
    history: Sequence[Timing],
    max_batch_size: BatchSize,
    loaded_model: str | None = None,
    load_seconds: float | None = None,
) -> tuple[float | None, str]:
    """Seconds the cells should take run in this order, priced batch by batch with the cost model fitted to this
    machine's recorded timings (``estimates.py``), plus ``load_seconds`` per model load when it is known. None
    without any history."""
    if not history:
        return None, "no images generated on this machine yet"
    batches = planned_batches(ordered, [cell_batch_key(cell) for cell in ordered], max_batch_size)
    model = fit_cost_model(recorded_batches(history))
    total = sum(model.batch_seconds(batch) for batch in batches)
    loads = _model_loads(batches, loaded_model)
    basis = f"fitted to {len(history)} recent images on this machine, batch by batch"
    if loads:
        if load_seconds is None:
            basis += f"; {loads} model load(s) not priced (no load measured yet)"
        else:
            total += loads * load_seconds
            basis += f"; {loads} model load(s) at {load_seconds:.1f} s"
    return round(total, 1), basis
