"""images.list, images.get"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cauldrond.engine import replay
from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.methods.shapes import MAX_ROW_ID, AfterId, RowId, experiment_shape, image_shape
from cauldrond.rpc.protocol import RpcError
from cauldrond.rpc.registry import MethodRegistry


class ListParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    experiment_id: RowId | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    after_id: AfterId | None = None
    order: Literal["oldest", "newest"] = Field(
        default="oldest", description="oldest: ascending id, paged by after_id; newest: descending, by before_id"
    )
    before_id: RowId | None = Field(default=None, description="With order newest: images with a smaller id (paging)")

    @model_validator(mode="after")
    def _cursor_matches_order(self) -> ListParams:
        if self.order == "newest" and self.after_id is not None:
            raise ValueError("order 'newest' pages with before_id, not after_id")
        if self.order == "oldest" and self.before_id is not None:
            raise ValueError("before_id pages order 'newest'")
        return self


class GetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_id: RowId


async def list_images(ctx: RpcContext, params: ListParams) -> dict[str, Any]:
    """Finished images, optionally of one experiment: oldest first (after_id pages), or newest first (before_id
    pages). has_more says another page exists; next holds the cursor to pass for it."""
    newest = params.order == "newest"
    rows = await ctx.services.store.images.page(
        experiment_id=params.experiment_id,
        limit=params.limit + 1,  # one more than asked: whether another page exists, without counting them all
        after_id=params.after_id,
        before_id=(params.before_id or MAX_ROW_ID) if newest else None,
    )
    page, has_more = rows[: params.limit], len(rows) > params.limit
    cursor = {("before_id" if newest else "after_id"): page[-1].id} if has_more else None
    return {"images": [image_shape(ctx.services, row) for row in page], "has_more": has_more, "next": cursor}


async def get(ctx: RpcContext, params: GetParams) -> dict[str, Any]:
    """One image's record: params, seed, hash, timings, file and URL."""
    row = await ctx.services.store.images.get(params.image_id)
    if row is None:
        raise RpcError("not_found", f"no image {params.image_id}")
    return {"image": image_shape(ctx.services, row)}


class RerunParams(GetParams):
    priority: int = Field(default=0, ge=-1000, le=1000)


async def rerun(ctx: RpcContext, params: RerunParams) -> dict[str, Any]:
    """Queue an exact repeat of an image: the same params and seed, denoised in a batch of the shape the
    original ran in (size and position), so on the same CPU and versions the repeat is pixel-identical."""
    row = await ctx.services.store.images.get(params.image_id)
    if row is None:
        raise RpcError("not_found", f"no image {params.image_id}")
    shape = replay.shape_from_metadata(row.metadata)
    experiment, job_ids = await ctx.services.experiments.create(
        name=f"rerun of image {row.id}",
        kind="rerun",
        base=row.params,
        priority=params.priority,
        job_extras={replay.REPLAY_KEY: shape.to_json()} if shape is not None else None,
    )
    return {"experiment": experiment_shape(experiment), "job_ids": job_ids}


def register(registry: MethodRegistry) -> None:
    registry.register("images.list", ListParams, list_images)
    registry.register("images.get", GetParams, get)
    registry.register("images.rerun", RerunParams, rerun)
