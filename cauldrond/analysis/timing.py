"""Timing: seconds per image and per denoising step, per sampler and schedule (A1111's names, "DPM++ 2M Karras")
and per model, from the recorded timings.

Each image row records ``wall_time_s`` (its share of the batch that made it) and its params' ``steps``. Medians
are reported beside means because the first image after a model load carries the load and warm-up time, which
drags a mean far more than a median.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cauldrond.sampler_names import AUTOMATIC, a1111_sampler_name

Record = Mapping[str, Any]


@dataclass(frozen=True)
class Figures:
    median: float
    mean: float

    def to_dict(self) -> dict[str, float]:
        return {"median": self.median, "mean": self.mean}


@dataclass(frozen=True)
class TimingGroup:
    key: dict[str, str]
    label: str  # the key as one name: "DPM++ 2M Karras", "tiny-sd"
    count: int
    total_seconds: float
    seconds_per_image: Figures
    seconds_per_step: Figures

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": dict(self.key),
            "label": self.label,
            "count": self.count,
            "total_seconds": self.total_seconds,
            "seconds_per_image": self.seconds_per_image.to_dict(),
            "seconds_per_step": self.seconds_per_step.to_dict(),
        }


@dataclass(frozen=True)
class TimingAnalysis:
    overall: TimingGroup | None
    by_sampler: tuple[TimingGroup, ...]
    by_model: tuple[TimingGroup, ...]
    # Images without a usable time (missing, negative, not finite) or without a positive step count.
    skipped_image_ids: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_dict() if self.overall else None,
            "by_sampler": [group.to_dict() for group in self.by_sampler],
            "by_model": [group.to_dict() for group in self.by_model],
            "skipped_image_ids": list(self.skipped_image_ids),
        }


@dataclass(frozen=True)
class _Sample:
    sampler: str
    schedule: str
    model: str
    seconds: float
    steps: int


def _sample(record: Record) -> _Sample | None:
    params = record.get("params") or {}
    seconds = record.get("wall_time_s")
    steps = params.get("steps")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not math.isfinite(seconds) or seconds < 0:
        return None
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        return None
    schedule = params.get("schedule")
    return _Sample(
        sampler=str(params.get("sampler")),
        schedule=schedule if isinstance(schedule, str) else AUTOMATIC,
        model=str(params.get("model")),
        seconds=float(seconds),
        steps=steps,
    )


def _group(key: dict[str, str], samples: Sequence[_Sample], label: str = "all images") -> TimingGroup:
    per_image = [s.seconds for s in samples]
    per_step = [s.seconds / s.steps for s in samples]
    return TimingGroup(
        key=key,
        label=label,
        count=len(samples),
        total_seconds=math.fsum(per_image),
        seconds_per_image=Figures(median=statistics.median(per_image), mean=statistics.fmean(per_image)),
        seconds_per_step=Figures(median=statistics.median(per_step), mean=statistics.fmean(per_step)),
    )


def _by_sampler(samples: Sequence[_Sample]) -> tuple[TimingGroup, ...]:
    groups: dict[tuple[str, str], list[_Sample]] = defaultdict(list)
    for sample in samples:
        groups[(sample.sampler, sample.schedule)].append(sample)
    return tuple(
        _group({"sampler": sampler, "schedule": schedule}, members, a1111_sampler_name(sampler, schedule))
        for (sampler, schedule), members in sorted(groups.items())
    )


def _by_model(samples: Sequence[_Sample]) -> tuple[TimingGroup, ...]:
    groups: dict[str, list[_Sample]] = defaultdict(list)
    for sample in samples:
        groups[sample.model].append(sample)
    return tuple(_group({"model": model}, members, model) for model, members in sorted(groups.items()))


def analyze_timing(records: Iterable[Record]) -> TimingAnalysis:
    samples: list[_Sample] = []
    skipped: list[int] = []
    for record in records:
        sample = _sample(record)
        if sample is None:
            skipped.append(int(record["id"]))
        else:
            samples.append(sample)
    return TimingAnalysis(
        overall=_group({}, samples) if samples else None,
        by_sampler=_by_sampler(samples),
        by_model=_by_model(samples),
        skipped_image_ids=tuple(sorted(skipped)),
    )
