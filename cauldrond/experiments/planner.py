"""The planner: the order an experiment's cells run in, and what that order costs.

Whatever order the user's axes produce, cells are grouped so that each model loads once (the one already loaded
goes first) and cells that can share a denoising batch sit side by side, where the queue's ``take_batch`` joins
them. Inside a group the axes' own order is kept, so progress still reads naturally.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cauldrond.queue.batching import cell_batch_key


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


def plan_cost(ordered: Sequence[Mapping[str, Any]], max_batch_size: int, loaded_model: str | None = None) -> PlanCost:
    """Model loads and batches the engine will use for cells run in this order, as the queue batches them:
    adjacent cells with one batch key, up to ``max_batch_size``."""
    loads = batches = 0
    current_model = loaded_model
    previous_key: Any = None
    in_batch = 0
    for cell in ordered:
        if cell["model"] != current_model:
            loads += 1
            current_model = cell["model"]
        key = cell_batch_key(cell)
        if key != previous_key or in_batch == max_batch_size:
            batches += 1
            in_batch = 0
            previous_key = key
        in_batch += 1
    return PlanCost(model_loads=loads, batches=batches)


@dataclass(frozen=True)
class Timing:
    model: str
    steps: int
    width: int
    height: int
    wall_time_s: float


def estimate_seconds(ordered: Sequence[Mapping[str, Any]], history: Sequence[Timing]) -> tuple[float | None, str]:
    """Seconds the cells should take, from this machine's recorded timings: the median seconds per step per
    megapixel, per model where that model has history, else across all models. None without any history."""
    if not history:
        return None, "no images generated on this machine yet"

    def rate(samples: Sequence[Timing]) -> float:
        return statistics.median(t.wall_time_s / (t.steps * t.width * t.height / 1e6) for t in samples)

    overall = rate(history)
    per_model = {model: rate([t for t in history if t.model == model]) for model in {t.model for t in history}}
    total = sum(
        per_model.get(cell["model"], overall) * cell["steps"] * cell["width"] * cell["height"] / 1e6 for cell in ordered
    )
    return round(total, 1), f"median of {len(history)} recent images on this machine, per model where known"
