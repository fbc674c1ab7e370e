"""Where each cell of an experiment sits on its axes: the coordinates grids and exports are drawn from."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cauldrond.experiments.axes import Axis, coordinates
from cauldrond.params import GenerationParams
from cauldrond.store import JobRow


@dataclass(frozen=True)
class LayoutAxis:
    name: str
    values: tuple[Any, ...]

    def label(self, index: int) -> str:
        value = self.values[index]
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
        return ExperimentLayout(axes, {job.id: coordinates(job.idx, spec_axes) for job in jobs})
    fields = [
        name for name in GenerationParams.model_fields if len({_hashable(job.params.get(name)) for job in jobs}) > 1
    ]
    axes = tuple(
        LayoutAxis(name, tuple(dict.fromkeys(_hashable(job.params.get(name)) for job in jobs))) for name in fields
    )
    by_job = {job.id: tuple(axis.values.index(_hashable(job.params.get(axis.name))) for axis in axes) for job in jobs}
    return ExperimentLayout(axes, by_job)


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def combinations(sizes: Sequence[int]) -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(size) for size in sizes)))
