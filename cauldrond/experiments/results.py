"""Turning an experiment's finished images into answers: labelled grids, exports and convergence analysis.
Everything heavy (decoding PNGs, drawing, SSIM, plotting) runs on a worker thread, never on the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from cauldrond.analysis.convergence import Metric, analyze_convergence
from cauldrond.analysis.export import export_rows, to_csv, to_json
from cauldrond.analysis.plot import plot_convergence
from cauldrond.analysis.timing import analyze_timing
from cauldrond.experiments.errors import SpecError
from cauldrond.experiments.layout import ExperimentLayout, combinations, experiment_layout
from cauldrond.media.grid import GridTooLarge, draw_grid, grid_layout
from cauldrond.media.png import write_png_atomic
from cauldrond.store import ExperimentRow, ImageRow, JobRow, Store

MAX_JOBS = 100_000


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class ExperimentResults:
    experiment: ExperimentRow
    jobs: list[JobRow]
    images: dict[int, ImageRow]  # by job id

    def image_records(self) -> list[dict[str, Any]]:
        return [image.to_dict() for image in sorted(self.images.values(), key=lambda i: i.id)]


class ResultsService:
    def __init__(self, store: Store, images_dir: Path, renders_dir: Path) -> None:
        self._store = store
        self._images_dir = images_dir
        self._renders_dir = renders_dir

    async def load(self, experiment_id: int) -> ExperimentResults:
        experiment = await self._store.experiments.get(experiment_id)
        if experiment is None:
            raise NotFound(f"no experiment {experiment_id}")
        jobs = await self._store.jobs.page(experiment_id, MAX_JOBS, 0)
        images: dict[int, ImageRow] = {}
        after: int | None = None
        while page := await self._store.images.page(experiment_id=experiment_id, limit=1000, after_id=after):
            images.update((image.job_id, image) for image in page)
            after = page[-1].id
        return ExperimentResults(experiment, jobs, images)

    def render_path(self, name: str) -> Path:
        return self._renders_dir / f"{name}.png"

    async def grid(
        self,
        experiment_id: int,
        *,
        x: str,
        y: str | None,
        z: str | None,
        fixed: Mapping[str, Any],
        max_pixels: int,
    ) -> list[dict[str, Any]]:
        results = await self.load(experiment_id)
        layout = experiment_layout(results.experiment.spec, results.jobs)
        plan = _grid_plan(layout, x, y, z, fixed)
        return await asyncio.to_thread(self._draw_grids, results, layout, plan, max_pixels)

    def _draw_grids(
        self, results: ExperimentResults, layout: ExperimentLayout, plan: _GridPlan, max_pixels: int
    ) -> list[dict[str, Any]]:
        by_coords = {layout.coordinates[job.id]: results.images.get(job.id) for job in results.jobs}
        x_axis = layout.axes[plan.x]
        y_axis = layout.axes[plan.y] if plan.y is not None else None
        made = []
        for outer in combinations([len(layout.axes[i].values) for i in plan.outer]):
            coords = list(plan.base)
            for axis_index, value_index in zip(plan.outer, outer, strict=True):
                coords[axis_index] = value_index
            rows: list[list[ImageRow | None]] = []
            for row in range(len(y_axis.values) if y_axis else 1):
                cells = []
                for column in range(len(x_axis.values)):
                    coords[plan.x] = column
                    if plan.y is not None:
                        coords[plan.y] = row
                    cells.append(by_coords.get(tuple(coords)))
                rows.append(cells)
            pinned = {layout.axes[i].name: layout.axes[i].values[coords[i]] for i in plan.pinned}
            title = " · ".join(
                [results.experiment.name or f"experiment {results.experiment.id}"]
                + [layout.axes[i].label(coords[i]) for i in plan.pinned if len(layout.axes[i].values) > 1]
            )
            x_labels = [x_axis.label(i) for i in range(len(x_axis.values))]
            y_labels = [y_axis.label(i) for i in range(len(y_axis.values))] if y_axis else [""]
            name = _render_name(results.experiment.id, rows, [title, *x_labels, *y_labels])
            file = self.render_path(name)
            if not file.exists():
                present = [image for row in rows for image in row if image is not None]
                sized = [image.params for image in present] or [job.params for job in results.jobs[:1]]
                cell = (max(int(p["width"]) for p in sized), max(int(p["height"]) for p in sized))
                try:
                    # Check the pixel budget before decoding a single PNG.
                    grid_layout(len(x_labels), len(y_labels), cell, x_labels, y_labels, title, max_pixels=max_pixels)
                    pictures = [[self._open(image) for image in row] for row in rows]
                    grid = draw_grid(pictures, x_labels, y_labels, title, max_pixels=max_pixels, cell_size=cell)
                except GridTooLarge as exc:  # its message says how large and what to do
                    raise SpecError(str(exc)) from exc
                write_png_atomic(grid, self._renders_dir, file.name, {"Software": "Shadow Cauldron"})
            with Image.open(file) as written:
                width, height = written.size
            made.append(
                {"url": f"/grids/{name}.png", "file": str(file), "width": width, "height": height, "fixed": pinned}
            )
        return made

    async def export(self, experiment_id: int, fmt: str) -> dict[str, Any]:
        results = await self.load(experiment_id)
        records = results.image_records()

        def build() -> str:
            convergence = analyze_convergence(records, self._image_file) if records else None
            rows = export_rows(records, {"convergence": convergence.to_dict()} if convergence else None)
            return to_csv(rows) if fmt == "csv" else to_json(rows)

        content = await asyncio.to_thread(build)
        return {"format": fmt, "rows": len(records), "content": content}

    async def analyze(
        self, experiment_id: int, *, metric: Metric, threshold: float | None, plot: bool
    ) -> dict[str, Any]:
        results = await self.load(experiment_id)
        records = results.image_records()

        def build() -> dict[str, Any]:
            convergence = analyze_convergence(records, self._image_file, metric=metric, threshold=threshold)
            timing = analyze_timing(records)
            rendered = None
            if plot and convergence.series:
                key = json.dumps([experiment_id, metric, convergence.threshold, [r["sha256"] for r in records]])
                name = hashlib.sha256(key.encode()).hexdigest()[:32]
                file = self.render_path(name)
                if not file.exists():
                    plot_convergence(convergence, file)
                rendered = {"url": f"/grids/{name}.png", "file": str(file)}
            return {"convergence": convergence.to_dict(), "timing": timing.to_dict(), "plot": rendered}

        return await asyncio.to_thread(build)

    def _image_file(self, record: Mapping[str, Any]) -> Path:
        return self._images_dir / str(record["path"])

    def _open(self, image: ImageRow | None) -> Image.Image | None:
        if image is None:
            return None
        with Image.open(self._images_dir / image.path) as opened:
            return opened.convert("RGB")


@dataclass(frozen=True)
class _GridPlan:
    x: int
    y: int | None
    outer: tuple[int, ...]  # axes that make one grid per value (z first, then unfixed axes with several values)
    pinned: tuple[int, ...]  # axes held at one value in each grid (fixed, outer, single-valued)
    base: tuple[int, ...]  # the coordinate each axis starts at


def _grid_plan(layout: ExperimentLayout, x: str, y: str | None, z: str | None, fixed: Mapping[str, Any]) -> _GridPlan:
    try:
        x_index = layout.axis(x)
        y_index = layout.axis(y) if y else None
        z_index = layout.axis(z) if z else None
        fixed_indexes = {layout.axis(name): value for name, value in fixed.items()}
    except KeyError as exc:
        raise SpecError(str(exc.args[0])) from exc
    on_grid = [i for i in (x_index, y_index, z_index) if i is not None]
    if len(set(on_grid)) != len(on_grid):
        raise SpecError("x, y and z must be different axes")
    base = [0] * len(layout.axes)
    for index, value in fixed_indexes.items():
        if index in on_grid:
            raise SpecError(f"axis {layout.axes[index].name!r} is on the grid; it cannot also be fixed")
        base[index] = _value_index(layout, index, value)
    outer = ([z_index] if z_index is not None else []) + [
        i
        for i in range(len(layout.axes))
        if i not in on_grid and i not in fixed_indexes and len(layout.axes[i].values) > 1
    ]
    pinned = tuple(i for i in range(len(layout.axes)) if i not in (x_index, y_index))
    return _GridPlan(x_index, y_index, tuple(outer), pinned, tuple(base))


def _value_index(layout: ExperimentLayout, index: int, value: Any) -> int:
    axis = layout.axes[index]
    for position, candidate in enumerate(axis.values):
        if candidate == value or str(candidate) == str(value):
            return position
    choices = ", ".join(str(v) for v in axis.values)
    raise SpecError(f"axis {axis.name!r} has no value {value!r}; its values: {choices}", field=axis.name, value=value)


def _render_name(experiment_id: int, rows: list[list[ImageRow | None]], labels: list[str]) -> str:
    """Content-addressed: the same images and labels give the same file, so a repeated request is free."""
    key = json.dumps([experiment_id, labels, [[i.sha256 if i else None for i in row] for row in rows]])
    return hashlib.sha256(key.encode()).hexdigest()[:32]
