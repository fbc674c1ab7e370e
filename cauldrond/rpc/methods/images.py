"""images.list, images.get"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.methods.shapes import experiment_shape, image_shape
from cauldrond.rpc.protocol import RpcError
from cauldrond.rpc.registry import MethodRegistry


class ListParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    experiment_id: int | None = Field(default=None, ge=1)
    limit: int = Field(default=100, ge=1, le=1000)
    after_id: int | None = Field(default=None, ge=0, description="Return images with a larger id (paging)")


class GetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_id: int = Field(ge=1)


async def list_images(ctx: RpcContext, params: ListParams) -> dict[str, Any]:
    """Finished images in id order, optionally of one experiment; page with after_id."""
    rows = await ctx.services.store.images.page(
        experiment_id=params.experiment_id, limit=params.limit, after_id=params.after_id
    )
    return {"images": [image_shape(ctx.services, row) for row in rows]}


async def get(ctx: RpcContext, params: GetParams) -> dict[str, Any]:
    """One image's record: params, seed, hash, timings, file and URL."""
    row = await ctx.services.store.images.get(params.image_id)
    if row is None:
        raise RpcError("not_found", f"no image {params.image_id}")
    return {"image": image_shape(ctx.services, row)}


class RerunParams(GetParams):
    priority: int = Field(default=0, ge=-1000, le=1000)


async def rerun(ctx: RpcContext, params: RerunParams) -> dict[str, Any]:
    """Queue an exact repeat of an image: the same params and seed. On CPU the repeat is pixel-identical."""
    row = await ctx.services.store.images.get(params.image_id)
    if row is None:
        raise RpcError("not_found", f"no image {params.image_id}")
    experiment, job_ids = await ctx.services.experiments.create(
        name=f"rerun of image {row.id}", kind="rerun", base=row.params, priority=params.priority
    )
    return {"experiment": experiment_shape(experiment), "job_ids": job_ids}


def register(registry: MethodRegistry) -> None:
    registry.register("images.list", ListParams, list_images)
    registry.register("images.get", GetParams, get)
    registry.register("images.rerun", RerunParams, rerun)
