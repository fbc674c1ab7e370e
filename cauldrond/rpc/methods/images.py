"""images.list (the gallery: filters, newest or oldest first, keyset pages), images.get, images.rerun"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cauldrond.engine import replay
from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.methods.gallery import gallery_item
from cauldrond.rpc.methods.plugins import MAX_SEARCH_WORDS
from cauldrond.rpc.methods.shapes import AfterId, RowId, experiment_shape, image_shape
from cauldrond.rpc.protocol import RpcError
from cauldrond.rpc.registry import MethodRegistry
from cauldrond.store.gallery import GalleryFilter


class ListParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    experiment_id: RowId | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    after_id: AfterId | None = Field(
        default=None, description="The previous page's next_after_id: images after it in the chosen order"
    )
    order: Literal["oldest", "newest"] = Field(
        default="oldest", description="oldest: ascending id; newest: descending id (the gallery)"
    )
    before_id: RowId | None = Field(
        default=None, description="With order newest: images with a smaller id (the same as after_id there)"
    )
    model: str | None = Field(default=None, min_length=1, max_length=200)
    sampler: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description='A1111 name ("DPM++ 2M Karras": that schedule) or sampler name ("DPM++ 2M": any schedule)',
    )
    tag: str | None = Field(default=None, min_length=1, max_length=100, description="A tag the image must have")
    text: str = Field(default="", max_length=1000, description="Words that must all appear in the annotations")
    favorite: bool | None = Field(default=None, description="true: favourites only; false: all but favourites")
    min_rating: int | None = Field(default=None, ge=1, le=5)

    @model_validator(mode="after")
    def _cursor_matches_order(self) -> ListParams:
        if self.order == "oldest" and self.before_id is not None:
            raise ValueError("before_id pages order 'newest'")
        if self.after_id is not None and self.before_id is not None:
            raise ValueError("give after_id or before_id, not both")
        if len(self.text.split()) > MAX_SEARCH_WORDS:
            raise ValueError(f"at most {MAX_SEARCH_WORDS} text words")
        return self

    def query(self) -> GalleryFilter:
        return GalleryFilter(
            experiment_id=self.experiment_id,
            model=self.model,
            sampler=self.sampler.strip() if self.sampler else None,
            favorite=self.favorite,
            min_rating=self.min_rating,
            words=tuple(self.text.split()),
            tag=self.tag.strip() if self.tag else None,
        )


class GetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_id: RowId


async def list_images(ctx: RpcContext, params: ListParams) -> dict[str, Any]:
    """Finished images not in the trash, oldest first or newest first (the gallery), filtered by experiment,
    model, sampler, tag, annotation words (images.search's rule), favourite and least rating. Each has the
    images.get fields (favorite, rating, url, thumb_url...) and a caption. Page with next_after_id as after_id
    (null on the last page); has_more and next (the cursor as a map) say the same."""
    newest = params.order == "newest"
    cursor = params.before_id if params.before_id is not None else params.after_id
    rows = await ctx.services.store.images.gallery(
        params.query(),
        limit=params.limit + 1,  # one more than asked: whether another page exists, without counting them all
        after_id=cursor,
        newest=newest,
    )
    page, has_more = rows[: params.limit], len(rows) > params.limit
    next_after_id = page[-1].id if has_more else None
    nxt = {("before_id" if newest else "after_id"): next_after_id} if next_after_id is not None else None
    return {
        "images": [gallery_item(ctx.services, row) for row in page],
        "has_more": has_more,
        "next": nxt,
        "next_after_id": next_after_id,
    }


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
