"""Where each cell of an experiment sits on its axes: the coordinates grids and exports are drawn from."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cauldrond.experiments.axes import Axis, coordinates
from cauldrond.params import GenerationParams
from cauldrond.sampler_names import sampler_name_of
from cauldrond.store import JobRow

SAMPLER_AXIS = "sampler"


@dataclass(frozen=True)
class LayoutAxis:
    name: str
    values: tuple[Any, ...]
    shown: tuple[str, ...] | None = None  # how each value reads in a label, where that is not the value itself

    def label(self, index: int) -> str:
        value = self.values[index]
        if self.shown is not None:
            return f"{self.name}: {self.shown[index]}"
        if self.name == "seed" and value == -1:
            return "seed: random"
        return f"{self.name}: {value}"


@dataclass(frozen=True)
class ExperimentLayout:
    axes: tuple[LayoutAxis, ...]
    coordinates: Mapping[int, tuple[int, ...]]  # job id -> one index per axis

    def axis(self, name: str) -> int:
        for position, axis in enumerate(self.axes):
            if axis.name == name:
                return position
        names = ", ".join(axis.name for axis in self.axes) or "none (all cells share their params)"
        raise KeyError(f"the experiment has no axis {name!r}; its axes: {names}")


def experiment_layout(spec: Mapping[str, Any], jobs: Sequence[JobRow]) -> ExperimentLayout:
    """Axes from the spec's resolved axes (a cell's index decodes to its coordinates, first axis outermost). An
    experiment given as explicit cells gets one axis per parameter that differs between its cells."""
    resolved = spec.get("resolved_axes") or []
    if resolved:
        axes = tuple(LayoutAxis(str(a["name"]), tuple(a["values"])) for a in resolved)
        spec_axes = [Axis(axis.name, axis.values) for axis in axes]
        by_index = {job.id: coordinates(job.idx, spec_axes) for job in jobs}
        return ExperimentLayout(_with_sampler_names(axes, by_index, jobs), by_index)
    fields = [
        name for name in GenerationParams.model_fields if len({_hashable(job.params.get(name)) for job in jobs}) > 1
    ]
    axes = tuple(
        LayoutAxis(name, tuple(dict.fromkeys(_hashable(job.params.get(name)) for job in jobs))) for name in fields
    )
    by_job = {job.id: tuple(axis.values.index(_hashable(job.params.get(axis.name))) for axis in axes) for job in jobs}
    return ExperimentLayout(_with_sampler_names(axes, by_job, jobs), by_job)


def _with_sampler_names(
    axes: tuple[LayoutAxis, ...], by_job: Mapping[int, tuple[int, ...]], jobs: Sequence[JobRow]
) -> tuple[LayoutAxis, ...]:
    """A sampler axis labelled with A1111's names: "DPM++ 2M Karras" whether the user wrote that, a lower-case
    spelling, or "DPM++ 2M" with a Karras schedule in base. A value whose cells run several schedules (a schedule
    axis beside it labels those) keeps the value as written."""
    position = next((i for i, axis in enumerate(axes) if axis.name == SAMPLER_AXIS), None)
    if position is None:
        return axes
    names: list[set[str]] = [set() for _ in axes[position].values]
    for job in jobs:
        names[by_job[job.id][position]].add(sampler_name_of(job.params))
    sampler = axes[position]
    shown = tuple(
        next(iter(found)) if len(found) == 1 else str(value) for found, value in zip(names, sampler.values, strict=True)
    )
    return (*axes[:position], LayoutAxis(sampler.name, sampler.values, shown), *axes[position + 1 :])


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def combinations(sizes: Sequence[int]) -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(size) for size in sizes)))
