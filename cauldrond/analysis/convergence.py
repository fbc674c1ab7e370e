"""Convergence: at how many steps does an image stop changing?

Images that differ only in ``steps`` form a series. Each image is compared with the series' highest-step image
(the best estimate of where the sampler is heading), by mean absolute pixel difference (MAD, RGB, 0..1) and by
SSIM. A series converged at the first step count from which every larger step count stays under the threshold.

Why MAD 0.02 by default: 0.02 of full scale is about 5 of 255 levels per channel on average. Rounding and
float noise between runs stay well under 1/255, while a changed composition, a moved edge or a shifted colour
cast gives 0.05 and more on SD images; around 0.02 the remaining changes are fine texture that is hard to see
side by side. For SSIM the threshold applies to ``1 - SSIM``; 0.05 (SSIM 0.95) is the usual "near-identical".
Both are heuristics: the caller can pass its own.

The input is plain data (image records shaped like the store's image rows) and a way to get each image's
pixels, so this module needs neither the store nor the daemon.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image
from skimage.metrics import structural_similarity

from cauldrond.params import param_names
from cauldrond.sampler_names import AUTOMATIC, a1111_sampler_name, sampler_name_of

Metric = Literal["mad", "ssim"]
METRICS: tuple[Metric, ...] = ("mad", "ssim")
DEFAULT_THRESHOLDS: dict[Metric, float] = {"mad": 0.02, "ssim": 0.05}

ImageSource = Image.Image | str | Path
Record = Mapping[str, Any]
Loader = Callable[[Record], ImageSource] | Mapping[int, ImageSource]
Pixels = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Spread:
    """Median and spread of converged-at step counts; quartiles interpolate linearly (numpy's default)."""

    count: int
    median: float
    min: float
    max: float
    q1: float
    q3: float

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "q1": self.q1,
            "q3": self.q3,
            "iqr": self.iqr,
        }


def spread(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("spread of no values")
    q1, median, q3 = (float(q) for q in np.percentile(values, [25, 50, 75]))
    return Spread(count=len(values), median=median, min=float(min(values)), max=float(max(values)), q1=q1, q3=q3)


@dataclass(frozen=True)
class SeriesPoint:
    steps: int
    image_id: int
    distance_mad: float
    ssim: float

    @property
    def distance_ssim(self) -> float:
        return 1.0 - self.ssim

    def distance(self, metric: Metric) -> float:
        return self.distance_mad if metric == "mad" else self.distance_ssim

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "image_id": self.image_id,
            "distance_mad": self.distance_mad,
            "distance_ssim": self.distance_ssim,
            "ssim": self.ssim,
        }


@dataclass(frozen=True)
class Series:
    """One prompt/model/sampler/seed/... at several step counts; ``points`` are sorted by steps and end with the
    reference (the highest step count, distance 0)."""

    params: dict[str, Any]  # the shared params, without steps
    reference_image_id: int
    reference_steps: int
    points: tuple[SeriesPoint, ...]
    converged_at: int | None

    @property
    def sampler(self) -> str:
        """The sampler as A1111 names it with its schedule ("DPM++ 2M Karras")."""
        return sampler_name_of(self.params)

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": dict(self.params),
            "reference_image_id": self.reference_image_id,
            "reference_steps": self.reference_steps,
            "converged_at": self.converged_at,
            "points": [point.to_dict() for point in self.points],
        }


@dataclass(frozen=True)
class CurvePoint:
    """Across the series of one group: the distances observed at one step count."""

    steps: int
    count: int
    median: float
    min: float
    max: float

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "count": self.count, "median": self.median, "min": self.min, "max": self.max}


@dataclass(frozen=True)
class GroupSummary:
    """Convergence of one sampler and schedule (or one model + sampler + schedule) across prompts and seeds."""

    key: dict[str, str]
    label: str  # the key as a person reads it: "DPM++ 2M Karras", "tiny-sd / DPM++ 2M Karras"
    series: int
    converged: int
    never_converged: int
    converged_at: Spread | None  # over the series that converged
    curve: tuple[CurvePoint, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": dict(self.key),
            "label": self.label,
            "series": self.series,
            "converged": self.converged,
            "never_converged": self.never_converged,
            "converged_at": self.converged_at.to_dict() if self.converged_at else None,
            "curve": [point.to_dict() for point in self.curve],
        }


@dataclass(frozen=True)
class ConvergenceAnalysis:
    metric: Metric
    threshold: float
    series: tuple[Series, ...]
    by_sampler: tuple[GroupSummary, ...]
    by_model_sampler_schedule: tuple[GroupSummary, ...]
    # Images in no series: the only step count of their params, or an exact duplicate of another image's cell.
    unmatched_image_ids: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "threshold": self.threshold,
            "series": [series.to_dict() for series in self.series],
            "by_sampler": [summary.to_dict() for summary in self.by_sampler],
            "by_model_sampler_schedule": [summary.to_dict() for summary in self.by_model_sampler_schedule],
            "unmatched_image_ids": list(self.unmatched_image_ids),
        }


def converged_at(points: Iterable[tuple[int, float]], threshold: float) -> int | None:
    """The smallest step count from which the distance stays under ``threshold`` at every larger step count.

    ``points`` are (steps, distance) pairs, in any order, without the reference image itself (its distance is 0
    by construction, so it would make every series converge). None when the largest step count is still at or
    over the threshold, or when there are no points."""
    answer: int | None = None
    for steps, distance in sorted(points, reverse=True):
        if distance >= threshold:
            break
        answer = steps
    return answer


def series_fields() -> tuple[str, ...]:
    """Every generation param but steps (params.py, read at each call): images sharing these form one series."""
    return tuple(name for name in param_names() if name != "steps")


def series_key(params: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(_hashable(params.get(name)) for name in series_fields())


def _hashable(value: Any) -> Any:
    """Lists (a LoRA set) and maps (one LoRA) as tuples, so they can key a series like the scalar fields."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(key), _hashable(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_hashable(item) for item in value)
    return value


def group_series(records: Iterable[Record]) -> tuple[list[list[Record]], list[int]]:
    """Records split into series (each sorted by steps, one record per step count, at least two step counts)
    and the ids of records in none. Of several images of the same cell the one with the lowest id counts."""
    by_key: dict[tuple[Any, ...], dict[int, Record]] = defaultdict(dict)
    unmatched: list[int] = []
    for record in sorted(records, key=lambda r: int(r["id"])):
        params = record["params"]
        cells = by_key[series_key(params)]
        steps = int(params["steps"])
        if steps in cells:
            unmatched.append(int(record["id"]))
        else:
            cells[steps] = record
    series: list[list[Record]] = []
    for cells in by_key.values():
        if len(cells) < 2:
            unmatched.extend(int(record["id"]) for record in cells.values())
            continue
        series.append([cells[steps] for steps in sorted(cells)])
    return series, sorted(unmatched)


def load_pixels(source: ImageSource) -> Pixels:
    """RGB pixels as floats in 0..1, shape (height, width, 3)."""
    if isinstance(source, Image.Image):
        return np.asarray(source.convert("RGB"), dtype=np.float64) / 255.0
    with Image.open(source) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


def mean_absolute_difference(a: Pixels, b: Pixels) -> float:
    _check_shapes(a, b)
    return float(np.mean(np.abs(a - b)))


def ssim(a: Pixels, b: Pixels) -> float:
    _check_shapes(a, b)
    # skimage's default 7-px window cannot fit a smaller image; use the largest odd window that does.
    window = min(7, *a.shape[:2])
    window -= 1 - window % 2
    if window < 3:
        raise ValueError(f"SSIM needs images of at least 3×3 px, got {a.shape[1]}×{a.shape[0]}")
    # skimage ships py.typed but leaves this function unannotated.
    value = structural_similarity(  # type: ignore[no-untyped-call]
        a, b, channel_axis=2, data_range=1.0, win_size=window
    )
    return float(value)


def _check_shapes(a: Pixels, b: Pixels) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"cannot compare images of different sizes: {a.shape[1]}×{a.shape[0]} and {b.shape[1]}×{b.shape[0]}"
        )


def _loader(load: Loader) -> Callable[[Record], ImageSource]:
    if isinstance(load, Mapping):
        table = load

        def from_table(record: Record) -> ImageSource:
            image_id = int(record["id"])
            if image_id not in table:
                raise KeyError(f"no pixels given for image {image_id}")
            return table[image_id]

        return from_table
    return load


def measure_series(records: Sequence[Record], load: Loader, metric: Metric, threshold: float) -> Series:
    """Compare each record of one series (sorted by steps) with its last, highest-step record."""
    get = _loader(load)
    reference = records[-1]
    reference_pixels = load_pixels(get(reference))
    points = []
    for record in records[:-1]:
        pixels = load_pixels(get(record))
        points.append(
            SeriesPoint(
                steps=int(record["params"]["steps"]),
                image_id=int(record["id"]),
                distance_mad=mean_absolute_difference(pixels, reference_pixels),
                ssim=ssim(pixels, reference_pixels),
            )
        )
    reference_steps = int(reference["params"]["steps"])
    points.append(SeriesPoint(steps=reference_steps, image_id=int(reference["id"]), distance_mad=0.0, ssim=1.0))
    params = {name: reference["params"].get(name) for name in series_fields()}
    return Series(
        params=params,
        reference_image_id=int(reference["id"]),
        reference_steps=reference_steps,
        points=tuple(points),
        converged_at=converged_at(((p.steps, p.distance(metric)) for p in points[:-1]), threshold),
    )


def group_label(key: Mapping[str, Any]) -> str:
    """A group key read as one name: sampler and schedule become A1111's name, other fields stay as they are."""
    parts = [str(value) for name, value in key.items() if name not in ("sampler", "schedule")]
    if "sampler" in key:
        schedule = key.get("schedule")
        parts.append(a1111_sampler_name(str(key["sampler"]), schedule if isinstance(schedule, str) else None))
    return " / ".join(parts)


def summarise(key: dict[str, str], series: Sequence[Series], metric: Metric) -> GroupSummary:
    reached = [s.converged_at for s in series if s.converged_at is not None]
    by_steps: dict[int, list[float]] = defaultdict(list)
    for one in series:
        for point in one.points:
            by_steps[point.steps].append(point.distance(metric))
    curve = tuple(
        CurvePoint(
            steps=steps,
            count=len(values),
            median=float(np.median(values)),
            min=float(min(values)),
            max=float(max(values)),
        )
        for steps, values in sorted(by_steps.items())
    )
    return GroupSummary(
        key=key,
        label=group_label(key),
        series=len(series),
        converged=len(reached),
        never_converged=len(series) - len(reached),
        converged_at=spread(reached) if reached else None,
        curve=curve,
    )


def _key_value(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None and name == "schedule":
        return AUTOMATIC  # records from before schedules were recorded ran with GenerationParams' default
    return str(value)


def _summaries(series: Sequence[Series], fields: Sequence[str], metric: Metric) -> tuple[GroupSummary, ...]:
    groups: dict[tuple[str, ...], list[Series]] = defaultdict(list)
    for one in series:
        groups[tuple(_key_value(one.params, name) for name in fields)].append(one)
    return tuple(
        summarise(dict(zip(fields, key, strict=True)), members, metric) for key, members in sorted(groups.items())
    )


def analyze_convergence(
    records: Iterable[Record], load: Loader, *, metric: Metric = "mad", threshold: float | None = None
) -> ConvergenceAnalysis:
    """Find the step series among ``records``, measure them, and summarise per sampler and schedule (two schedules
    of one sampler are two groups, "DPM++ 2M" and "DPM++ 2M Karras") and per model + sampler + schedule.
    ``load`` gives an image's pixels (a PIL image or a file path) from its record, or is a mapping from image id
    to them. Each image is read once."""
    if metric not in METRICS:
        raise ValueError(f"unknown convergence metric {metric!r}; use one of {', '.join(METRICS)}")
    limit = DEFAULT_THRESHOLDS[metric] if threshold is None else threshold
    if not 0.0 < limit <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {limit}")
    grouped, unmatched = group_series(records)
    measured = sorted(
        (measure_series(members, load, metric, limit) for members in grouped),
        key=lambda s: (tuple(str(value) for value in s.params.values()), s.reference_image_id),
    )
    return ConvergenceAnalysis(
        metric=metric,
        threshold=limit,
        series=tuple(measured),
        by_sampler=_summaries(measured, ("sampler", "schedule"), metric),
        by_model_sampler_schedule=_summaries(measured, ("model", "sampler", "schedule"), metric),
        unmatched_image_ids=tuple(unmatched),
    )
