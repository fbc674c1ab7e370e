"""The X/Y/Z plot's answer as A1111 gives it, drawn from the finished experiment's images.

A1111 (scripts/xyz_grid.py, ``draw_xyz_grid`` and ``Script.run``) returns the main grid first, then one sub-grid
per Z value when "Include Sub Grids" is on, then every cell's image when "Include Sub Images" is on; the
infotexts follow the same order. A sub-grid holds the X × Y cells of one Z value, labelled "Steps: 20" on top
and on the left when "Draw legend" is on, with "Grid margins" pixels between cells (A1111 applies the margin only
when it draws the legend, and so does this). The main grid is the sub-grids side by side under their Z labels;
with no Z axis it is the one sub-grid. A cell whose job failed is drawn as grid.py's "missing" placeholder and
returned, among the images, as a black image of the cell's size, as A1111 returns a failed cell.

The route calls this once the experiment has finished, off the event loop (it decodes and draws)::

    output = await asyncio.to_thread(compose_xyz_output, plot, experiment.spec["resolved_axes"], cells)

with ``cells[i]`` the image and infotext of the job at index i (``job_ids[i]`` from ``experiments.create``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image

from cauldrond.a1111.xyz import SCRIPT_TITLE, PlotAxis, XyzExperiment, axis_label
from cauldrond.media.grid import DEFAULT_MAX_PIXELS, draw_grid

OutputKind = Literal["grid", "sub-grid", "image"]


@dataclass(frozen=True)
class PlotCell:
    image: Image.Image | None  # None: the cell's job failed or was cancelled
    infotext: str  # the image's A1111 infotext (its PNG "parameters" chunk); "" when there is none


@dataclass(frozen=True)
class XyzOutput:
    images: list[Image.Image]
    infotexts: list[str]
    kinds: list[OutputKind]
    # The cell whose params each entry reports (a grid reports its first cell), for info's all_seeds/all_prompts.
    sources: list[int]


def plot_values(plot: XyzExperiment, resolved_axes: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """The values of X, Y and Z as the experiment ran them (a Seed axis's -1 fixed); ``[None]`` for Nothing."""
    by_name = {str(axis["name"]): list(axis["values"]) for axis in resolved_axes}
    values: list[list[Any]] = []
    for axis in (plot.request.x, plot.request.y, plot.request.z):
        if axis.field is None:
            values.append([None])
        elif axis.field in by_name and len(by_name[axis.field]) == len(axis.values):
            values.append(by_name[axis.field])
        else:
            raise ValueError(f"the experiment has no axis {axis.field!r} of {len(axis.values)} values")
    return values


def compose_xyz_output(
    plot: XyzExperiment,
    resolved_axes: Sequence[Mapping[str, Any]],
    cells: Sequence[PlotCell],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> XyzOutput:
    """The grid, sub-grids and images in A1111's order, as the request's switches choose. Raises ValueError when
    ``cells`` does not match the plot, GridTooLarge (a ValueError) over ``max_pixels``."""
    request = plot.request
    xs, ys, zs = plot_values(plot, resolved_axes)
    per_grid = len(xs) * len(ys)
    if len(cells) != per_grid * len(zs):
        raise ValueError(f"{len(cells)} cells for a plot of {len(xs)} x {len(ys)} x {len(zs)}")
    fallback = _fallback_size(plot, cells)
    out = XyzOutput([], [], [], [])
    if request.draw_grid:
        sub_grids = [
            _sub_grid(plot, (xs, ys), cells[z * per_grid : (z + 1) * per_grid], fallback, max_pixels)
            for z in range(len(zs))
        ]
        infotext = _grid_infotext(plot, cells[0], (xs, ys, zs), xyz=True)
        _add(out, _main_grid(plot, zs, sub_grids, max_pixels), infotext, "grid", 0)
        if request.include_sub_grids:
            for z, sub_grid in enumerate(sub_grids):
                infotext = _grid_infotext(plot, cells[z * per_grid], (xs, ys, zs), xyz=False)
                _add(out, sub_grid, infotext, "sub-grid", z * per_grid)
    if request.include_lone_images:
        for index, cell in enumerate(cells):
            image = cell.image if cell.image is not None else Image.new("RGB", fallback)
            _add(out, image, cell.infotext, "image", index)
    return out


def _add(out: XyzOutput, image: Image.Image, infotext: str, kind: OutputKind, source: int) -> None:
    out.images.append(image)
    out.infotexts.append(infotext)
    out.kinds.append(kind)
    out.sources.append(source)


def _fallback_size(plot: XyzExperiment, cells: Sequence[PlotCell]) -> tuple[int, int]:
    """The size of a cell that has no image: the largest image's, or the requested size when none exists."""
    sizes = [cell.image.size for cell in cells if cell.image is not None]
    if sizes:
        return max(w for w, _ in sizes), max(h for _, h in sizes)
    width, height = plot.base.get("width", 512), plot.base.get("height", 512)
    return (width if isinstance(width, int) else 512), (height if isinstance(height, int) else 512)


def _labels(axis: PlotAxis, values: Sequence[Any], draw_legend: bool) -> list[str]:
    return [axis_label(axis, value) if draw_legend and axis.field else "" for value in values]


def _sub_grid(
    plot: XyzExperiment,
    axes_values: tuple[list[Any], list[Any]],
    cells: Sequence[PlotCell],
    fallback: tuple[int, int],
    max_pixels: int,
) -> Image.Image:
    xs, ys = axes_values
    request = plot.request
    rows = [[cells[y * len(xs) + x].image for x in range(len(xs))] for y in range(len(ys))]
    return draw_grid(
        rows,
        _labels(request.x, xs, request.draw_legend),
        _labels(request.y, ys, request.draw_legend),
        max_pixels=max_pixels,
        cell_size=None if any(cell.image for cell in cells) else fallback,
        # A1111 puts the margin between cells only when it draws the legend; a plain grid has none.
        gap=request.margin_size if request.draw_legend else 0,
    )


def _main_grid(plot: XyzExperiment, zs: Sequence[Any], sub_grids: list[Image.Image], max_pixels: int) -> Image.Image:
    if len(sub_grids) == 1:
        return sub_grids[0].copy()  # A1111's grid of one sub-grid under an empty title is that sub-grid
    labels = _labels(plot.request.z, zs, plot.request.draw_legend)
    return draw_grid([sub_grids], labels, [""], max_pixels=max_pixels, gap=0)


def _grid_infotext(
    plot: XyzExperiment, first: PlotCell, values: tuple[list[Any], list[Any], list[Any]], *, xyz: bool
) -> str:
    """The first cell's infotext with the plot's fields added, as A1111 writes a grid's: "Script: X/Y/Z plot,
    X Type: Steps, X Values: 10-30 (+10)" (and "Fixed X Values" for a Seed axis whose -1 were drawn)."""
    request = plot.request
    fields = [("Script", SCRIPT_TITLE)]
    axes = (request.x, request.y, request.z) if xyz else (request.x, request.y)
    for axis, axis_values in zip(axes, values, strict=False):
        if axis.field is None:
            continue
        fields += [(f"{axis.letter} Type", axis.label), (f"{axis.letter} Values", axis.text)]
        if axis.label == "Seed" and not request.no_fixed_seeds:
            fields.append((f"Fixed {axis.letter} Values", ", ".join(str(value) for value in axis_values)))
    line = ", ".join(f"{key}: {_quoted(value)}" for key, value in fields)
    return f"{first.infotext}, {line}" if first.infotext else line


def _quoted(value: str) -> str:
    # A1111's infotext quoting: a value holding a separator is written as a JSON string.
    return json.dumps(value, ensure_ascii=False) if any(c in value for c in ",:\n") else value
