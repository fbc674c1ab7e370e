"""How long a planned experiment should take on this machine, from the timings its recent images recorded.

The unit of cost is a denoising batch, as the engine runs it. A batch's seconds are modelled as a power law in
what drives them::

    seconds = k[model] * evals ** a * images ** b * (pixels / 64x64) ** c  +  overhead

``evals`` counts model evaluations (steps, or 2 * steps - 1 for the second-order samplers Heun, DPM2 and DPM++
SDE), ``images`` the batch's size and ``pixels`` one image's. On a GPU running a real checkpoint a, b and c sit
near 1; on a CPU running a small model, fixed per-call costs pull them well below 1 (the old estimate, seconds per
step per megapixel, assumed 1 for all three and was 3-5x off). So they are fitted, by least squares on the
logarithms of the recorded batches, with each exponent pulled gently towards a prior so that history that never
varied, say, the batch size still gives an answer. ``overhead`` is what a batch costs outside the provider
(writing PNGs, committing, events): the median, over batches that ran back to back in one experiment, of the
time between their commits less the provider's time. A model load costs the mean load time the provider
measured, when one is known.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

# Diffusers runs these as 2 * steps - 1 model evaluations (a predictor and a corrector per step but the last).
SECOND_ORDER_SAMPLERS = frozenset({"Heun", "DPM2", "DPM2 a", "DPM++ SDE"})
REFERENCE_PIXELS = 64 * 64
# Priors for the exponents of evals, batch size and pixels, and how hard they pull (the weight of one recorded
# batch is 1): strong enough to hold an exponent the history cannot show, weak beside a few varied batches.
PRIORS = (1.0, 0.6, 0.8)
PRIOR_WEIGHT = 0.05
EXPONENT_RANGE = (0.1, 1.5)


@dataclass(frozen=True)
class Timing:
    """One recorded image: its params, its share of its batch's provider time, and where it ran."""

    model: str
    steps: int
    width: int
    height: int
    wall_time_s: float
    sampler: str = "Euler"
    batch_size: int = 1
    experiment_id: int = 0
    created_at: str = ""


@dataclass(frozen=True)
class PlannedBatch:
    model: str
    sampler: str
    steps: int
    pixels: int
    images: int


@dataclass(frozen=True)
class CostModel:
    scale: dict[str, float]  # k per model (seconds)
    exponents: tuple[float, float, float]
    overhead_s: float

    def batch_seconds(self, batch: PlannedBatch) -> float:
        k = self.scale.get(batch.model, statistics.median(self.scale.values()))
        a, b, c = self.exponents
        evals = float(evaluations(batch.sampler, batch.steps))
        pixels = batch.pixels / REFERENCE_PIXELS
        return float(k * evals**a * float(batch.images) ** b * pixels**c + self.overhead_s)


def evaluations(sampler: str, steps: int) -> int:
    return 2 * steps - 1 if sampler in SECOND_ORDER_SAMPLERS else steps


@dataclass(frozen=True)
class RecordedBatch:
    model: str
    sampler: str
    steps: int
    pixels: int
    images: int
    seconds: float  # the provider's time for the whole batch
    experiment_id: int
    committed_at: float | None  # when its last image was committed (epoch seconds), if known


def recorded_batches(history: Sequence[Timing]) -> list[RecordedBatch]:
    """Batches rebuilt from per-image rows: batch-mates are adjacent in an experiment and share their params'
    batch fields and the same share of the batch's time."""
    ordered = sorted(history, key=lambda t: (t.experiment_id, t.created_at))
    batches: list[RecordedBatch] = []
    group: list[Timing] = []

    def close() -> None:
        if group:
            first = group[0]
            batches.append(
                RecordedBatch(
                    model=first.model,
                    sampler=first.sampler,
                    steps=first.steps,
                    pixels=first.width * first.height,
                    images=len(group),
                    seconds=first.wall_time_s * len(group),
                    experiment_id=first.experiment_id,
                    committed_at=_epoch(group[-1].created_at),
                )
            )
            group.clear()

    for timing in ordered:
        if group and (_batch_identity(timing) != _batch_identity(group[0]) or len(group) >= group[0].batch_size):
            close()
        group.append(timing)
    close()
    return batches


def _batch_identity(t: Timing) -> tuple[Any, ...]:
    return (t.experiment_id, t.model, t.sampler, t.steps, t.width, t.height, t.batch_size, t.wall_time_s)


def _epoch(timestamp: str) -> float | None:
    try:
        return datetime.fromisoformat(timestamp).timestamp()
    except ValueError:
        return None


def fit_cost_model(batches: Sequence[RecordedBatch]) -> CostModel:
    """Least squares on log seconds: one intercept per model, three exponents pulled towards PRIORS."""
    models = sorted({b.model for b in batches})
    rows, targets = [], []
    for b in batches:
        intercepts = [1.0 if b.model == m else 0.0 for m in models]
        features = [
            math.log(evaluations(b.sampler, b.steps)),
            math.log(b.images),
            math.log(b.pixels / REFERENCE_PIXELS),
        ]
        rows.append(intercepts + features)
        targets.append(math.log(b.seconds))
    # The prior as extra observations: sqrt(w) * exponent = sqrt(w) * prior.
    weight = math.sqrt(PRIOR_WEIGHT)
    for j, prior in enumerate(PRIORS):
        row = [0.0] * (len(models) + len(PRIORS))
        row[len(models) + j] = weight
        rows.append(row)
        targets.append(weight * prior)
    solution, *_ = np.linalg.lstsq(np.array(rows), np.array(targets), rcond=None)
    low, high = EXPONENT_RANGE
    a, b_exp, c = (min(max(float(x), low), high) for x in solution[len(models) :])
    # After clipping, each model's scale is refitted so its own batches stay centred.
    scale = {}
    for m in models:
        residuals = [
            math.log(b.seconds)
            - a * math.log(evaluations(b.sampler, b.steps))
            - b_exp * math.log(b.images)
            - c * math.log(b.pixels / REFERENCE_PIXELS)
            for b in batches
            if b.model == m
        ]
        scale[m] = math.exp(statistics.fmean(residuals))
    return CostModel(scale, (a, b_exp, c), batch_overhead(batches))


def batch_overhead(batches: Sequence[RecordedBatch]) -> float:
    """Median seconds between back-to-back batches of one experiment beyond the provider's own time; 0 when no
    two batches ran back to back."""
    gaps = []
    for before, after in itertools.pairwise(batches):
        if before.experiment_id != after.experiment_id or before.committed_at is None or after.committed_at is None:
            continue
        gap = after.committed_at - before.committed_at - after.seconds
        if gap >= 0:
            gaps.append(gap)
    return statistics.median(gaps) if gaps else 0.0


# A batch's size: fixed, or a function of the batch's first cell (the engine's measured size, batch_sizing.py).
BatchSize = int | Callable[[Mapping[str, Any]], int]


def planned_batches(
    ordered: Sequence[Mapping[str, Any]], keys: Sequence[Any], max_batch_size: BatchSize
) -> list[PlannedBatch]:
    """The batches the queue will form from cells in run order (``keys[i]`` is cell i's batch key): adjacent
    cells with one key, up to ``max_batch_size`` (of the batch's first cell, where it is a function)."""
    groups: list[tuple[Mapping[str, Any], int]] = []
    previous: Any = None
    for cell, key in zip(ordered, keys, strict=True):
        if groups and key == previous and groups[-1][1] < _size_of(max_batch_size, groups[-1][0]):
            groups[-1] = (groups[-1][0], groups[-1][1] + 1)
        else:
            groups.append((cell, 1))
            previous = key
    return [
        PlannedBatch(
            model=str(cell["model"]),
            sampler=str(cell.get("sampler", "")),
            steps=int(cell["steps"]),
            pixels=int(cell["width"]) * int(cell["height"]),
            images=images,
        )
        for cell, images in groups
    ]


def _size_of(size: BatchSize, first: Mapping[str, Any]) -> int:
    return size(first) if callable(size) else size


def mean_load_seconds(providers: Iterable[object]) -> float | None:
    """The mean model-load time the providers measured since the daemon started (the ``model_load_seconds``
    histogram a provider may keep for /metrics), or None before the first load."""
    total = count = 0.0
    for provider in providers:
        histogram = getattr(provider, "model_load_seconds", None)
        collect = getattr(histogram, "collect", None)
        if collect is None:
            continue
        for metric in collect():
            for sample in metric.samples:
                if sample.name.endswith("_sum"):
                    total += sample.value
                elif sample.name.endswith("_count"):
                    count += sample.value
    return total / count if count else None
