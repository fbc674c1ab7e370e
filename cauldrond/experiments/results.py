"""Turning an experiment's finished images into answers: labelled grids, exports and convergence analysis.

Everything heavy (decoding PNGs, drawing, SSIM, plotting) runs on this service's own pool of one thread, never
on the event loop nor on asyncio's default executor: grids are drawn one at a time, so six large requests cost
one grid's memory and leave the threads cheap requests use alone (issue 9). A grid holds its own pixels plus one
decoded cell at a time; ``memory`` records the most pixels held at once."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping
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
from cauldrond.media.grid import GridLayout, GridTooLarge, draw_grid, grid_layout
from cauldrond.media.png import write_bytes_atomic, write_png_atomic
from cauldrond.store import ExperimentRow, ImageRow, JobRow, Store
from cauldrond.work_pool import WorkPool

MAX_JOBS = 100_000
# An export reply carries at most this many characters (12 MiB of UTF-8 at worst, under the 15 MiB a reply may
# have); a longer export is fetched part by part.
EXPORT_PART_CHARS = 3 * 1024 * 1024


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class ExperimentResults:
    experiment: ExperimentRow
    jobs: list[JobRow]
    images: dict[int, ImageRow]  # by job id

    def image_records(self) -> list[dict[str, Any]]:
        return [image.to_dict() for image in sorted(self.images.values(), key=lambda i: i.id)]


class PixelLedger:
    """Pixels decoded or drawn and not yet released, and the most ever held at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.held = 0
        self.peak = 0

    def take(self, pixels: int) -> None:
        with self._lock:
            self.held += pixels
            self.peak = max(self.peak, self.held)

    def give_back(self, pixels: int) -> None:
        with self._lock:
            self.held -= pixels


class ResultsService:
    def __init__(self, store: Store, images_dir: Path, renders_dir: Path) -> None:
        self._store = store
        self._images_dir = images_dir
        self._renders_dir = renders_dir
        self.pool = WorkPool("renders", workers=1, max_waiting=32)
        self.memory = PixelLedger()
        self.export_part_chars = EXPORT_PART_CHARS

    def close(self) -> None:
        """Drop waiting renders; the one being drawn dies with the process (see WorkPool)."""
        self.pool.close()

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
        return await self.pool.run(self._draw_grids, results, layout, plan, max_pixels)

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
            present = [image for row in rows for image in row if image is not None]
            sized = [image.params for image in present] or [job.params for job in results.jobs[:1]]
            cell = (max(int(p["width"]) for p in sized), max(int(p["height"]) for p in sized))
            try:
                # The pixel budget is checked before a single PNG is decoded; the size comes from the layout, so
                # a grid already drawn is never decoded again.
                measured = grid_layout(
                    len(x_labels), len(y_labels), cell, x_labels, y_labels, title, max_pixels=max_pixels
                )
            except GridTooLarge as exc:  # its message says how large and what to do
                raise SpecError(str(exc)) from exc
            if not file.exists():
                self._draw_one(measured, rows, x_labels, y_labels, title, cell, file)
            made.append(
                {
                    "url": f"/grids/{name}.png",
                    "file": str(file),
                    "width": measured.width,
                    "height": measured.height,
                    "fixed": pinned,
                }
            )
        return made

    def _draw_one(
        self,
        measured: GridLayout,
        rows: list[list[ImageRow | None]],
        x_labels: list[str],
        y_labels: list[str],
        title: str,
        cell: tuple[int, int],
        file: Path,
    ) -> None:
        if self.pool.closed.is_set():
            raise SpecError("the daemon is stopping; the grid was not drawn")
        self.memory.take(measured.pixels)
        cells = _CellLoader(self._images_dir, self.memory)
        try:
            loaders = [[cells(image) for image in row] for row in rows]
            grid = draw_grid(loaders, x_labels, y_labels, title, max_pixels=measured.pixels, cell_size=cell)
            cells.release()
            write_png_atomic(grid, self._renders_dir, file.name, {"Software": "Shadow Cauldron"})
            grid.close()
        finally:
            cells.release()
            self.memory.give_back(measured.pixels)

    async def export(self, experiment_id: int, fmt: str, part: int = 0) -> dict[str, Any]:
        """One part of the export (``export_part_chars`` characters; ``parts`` says how many there are). The whole
        text is built once and kept content-addressed beside the grids, so the next part is a file read."""
        results = await self.load(experiment_id)
        records = results.image_records()
        key = json.dumps(["export", experiment_id, fmt, [(r["id"], r["sha256"]) for r in records]])
        file = self._renders_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.{fmt}"

        def build() -> tuple[str, int]:
            if file.exists():
                content = file.read_text(encoding="utf-8")
            else:
                convergence = analyze_convergence(records, self._image_file) if records else None
                rows = export_rows(records, {"convergence": convergence.to_dict()} if convergence else None)
                content = to_csv(rows) if fmt == "csv" else to_json(rows)
                write_bytes_atomic(content.encode("utf-8"), self._renders_dir, file.name)
            size = self.export_part_chars
            parts = max(1, -(-len(content) // size))
            return content[part * size : (part + 1) * size], parts

        content, parts = await self.pool.run(build)
        if part >= parts:
            raise SpecError(f"the export has {parts} part(s); part {part} does not exist", field="part", value=part)
        return {"format": fmt, "rows": len(records), "content": content, "part": part, "parts": parts}

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

        return await self.pool.run(build)

    def _image_file(self, record: Mapping[str, Any]) -> Path:
        return self._images_dir / str(record["path"])


class _CellLoader:
    """Loaders for one grid's cells. draw_grid pastes and closes each cell before it loads the next, so one
    cell's pixels at a time are counted in the ledger."""

    def __init__(self, images_dir: Path, ledger: PixelLedger) -> None:
        self._images_dir = images_dir
        self._ledger = ledger
        self._counted = 0

    def __call__(self, image: ImageRow | None) -> Callable[[], Image.Image] | None:
        if image is None:
            return None
        path = self._images_dir / image.path
        return lambda: self._load(path)

    def _load(self, path: Path) -> Image.Image:
        self.release()
        with Image.open(path) as opened:
            self._counted = opened.width * opened.height
            self._ledger.take(self._counted)
            return opened.convert("RGB")

    def release(self) -> None:
        self._ledger.give_back(self._counted)
        self._counted = 0


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
