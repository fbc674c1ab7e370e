"""experiments.grid, experiments.export, experiments.analyze: answers drawn from an experiment's images."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cauldrond.experiments.errors import SpecError
from cauldrond.experiments.results import NotFound
from cauldrond.media.grid import DEFAULT_MAX_PIXELS, MAX_GRID_PIXELS
from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.methods.shapes import Offset, RowId
from cauldrond.rpc.protocol import RpcError
from cauldrond.rpc.registry import MethodRegistry

AxisName = Field(min_length=1, max_length=40)


class GridParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    experiment_id: RowId
    x: str = AxisName
    y: str | None = Field(default=None, max_length=40)
    z: str | None = Field(default=None, max_length=40, description="One grid per value of this axis")
    fixed: dict[str, Any] = Field(default_factory=dict, description="axis -> value for axes not on the grid")
    max_pixels: int = Field(
        default=DEFAULT_MAX_PIXELS,
        ge=10_000,
        le=MAX_GRID_PIXELS,
        description="Largest grid to draw; above 160 M px Pillow (and tools built on it) could not open it",
    )


class ExportParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    experiment_id: RowId
    format: Literal["csv", "json"] = "csv"
    part: Offset = Field(default=0, description="Which part of a long export (the reply says how many parts)")


class AnalyzeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    experiment_id: RowId
    metric: Literal["mad", "ssim"] = "mad"
    threshold: float | None = Field(
        default=None, gt=0.0, le=1.0, description="Default 0.02 for mad, 0.05 for ssim (applied to 1 - SSIM)"
    )
    plot: bool = True


async def grid(ctx: RpcContext, params: GridParams) -> dict[str, Any]:
    """Labelled comparison grids: x columns, y rows, one grid per z value; axes off the grid are fixed by
    `fixed` or split into further grids. Fetch each grid from its url."""
    try:
        grids = await ctx.services.results.grid(
            params.experiment_id, x=params.x, y=params.y, z=params.z, fixed=params.fixed, max_pixels=params.max_pixels
        )
    except NotFound as exc:
        raise RpcError("not_found", str(exc)) from exc
    except SpecError as exc:
        raise RpcError("invalid_params", str(exc), exc.to_data()) from exc
    return {"grids": grids}


async def export(ctx: RpcContext, params: ExportParams) -> dict[str, Any]:
    """One row per image with every parameter, timings, image id and analysis figures, as CSV or JSON text. A long
    export comes in parts: the reply's `parts` says how many; ask for each with `part`."""
    try:
        return await ctx.services.results.export(params.experiment_id, params.format, params.part)
    except NotFound as exc:
        raise RpcError("not_found", str(exc)) from exc
    except SpecError as exc:
        raise RpcError("invalid_params", str(exc), exc.to_data()) from exc


async def analyze(ctx: RpcContext, params: AnalyzeParams) -> dict[str, Any]:
    """Convergence (distance of each image to its series' highest-step image; the step count after which it stays
    under the threshold, summarised per sampler) and timing per sampler and model; optionally a plot."""
    try:
        return await ctx.services.results.analyze(
            params.experiment_id, metric=params.metric, threshold=params.threshold, plot=params.plot
        )
    except NotFound as exc:
        raise RpcError("not_found", str(exc)) from exc


def register(registry: MethodRegistry) -> None:
    registry.register("experiments.grid", GridParams, grid)
    registry.register("experiments.export", ExportParams, export)
    registry.register("experiments.analyze", AnalyzeParams, analyze)
