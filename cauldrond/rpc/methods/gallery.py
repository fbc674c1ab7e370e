"""images.favorite, images.rate, prompts.history: the gallery's marks on an image and the prompts people used.

Each change is committed before its ``image.updated`` event is published (and before the reply).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.methods.shapes import RowId, image_shape
from cauldrond.rpc.protocol import RpcError
from cauldrond.rpc.registry import MethodRegistry
from cauldrond.sampler_names import sampler_name_of
from cauldrond.services import Services
from cauldrond.store import ImageRow

MAX_PROMPT_WORDS = 10


def caption(row: ImageRow) -> dict[str, Any]:
    """What a gallery tile's caption shows, the sampler under its A1111 name ("DPM++ 2M Karras")."""
    params = row.params
    return {
        "model": params.get("model"),
        "sampler": sampler_name_of(params),
        "steps": params.get("steps"),
        "cfg": params.get("cfg_scale"),
        "width": params.get("width"),
        "height": params.get("height"),
        "prompt": params.get("prompt"),
    }


def gallery_item(services: Services, row: ImageRow) -> dict[str, Any]:
    """The ``images.get`` shape plus ``caption``: one tile of the gallery (or of the trash)."""
    return {**image_shape(services, row), "caption": caption(row)}


class FavoriteParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_id: RowId
    favorite: bool


class RateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_id: RowId
    rating: int | None = Field(ge=1, le=5, description="1-5, or null to clear the rating")


def _updated(ctx: RpcContext, row: ImageRow) -> dict[str, Any]:
    ctx.services.events.publish(
        "image.updated",
        image_id=row.id,
        experiment_id=row.experiment_id,
        favorite=row.favorite,
        rating=row.rating,
    )
    return {"image": gallery_item(ctx.services, row)}


async def favorite(ctx: RpcContext, params: FavoriteParams) -> dict[str, Any]:
    """Mark an image a favourite (or not). Replies with the image; announces image.updated."""
    row = await ctx.services.store.images.set_favorite(params.image_id, params.favorite)
    if row is None:
        raise RpcError("not_found", f"no image {params.image_id}", {"image_id": params.image_id})
    return _updated(ctx, row)


async def rate(ctx: RpcContext, params: RateParams) -> dict[str, Any]:
    """Rate an image 1-5, or clear its rating with null. Replies with the image; announces image.updated."""
    row = await ctx.services.store.images.set_rating(params.image_id, params.rating)
    if row is None:
        raise RpcError("not_found", f"no image {params.image_id}", {"image_id": params.image_id})
    return _updated(ctx, row)


class HistoryParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(default="", max_length=1000, description="Words the prompt must all contain")
    limit: int = Field(default=50, ge=1, le=500)

    @model_validator(mode="after")
    def _few_words(self) -> HistoryParams:
        if len(self.query.split()) > MAX_PROMPT_WORDS:
            raise ValueError(f"at most {MAX_PROMPT_WORDS} query words")
        return self


async def history(ctx: RpcContext, params: HistoryParams) -> dict[str, Any]:
    """Prompt and negative prompt pairs experiments used, most recently used first, with how many experiments
    used each; with query, only those whose prompt contains every word."""
    rows = await ctx.services.store.prompts.history(words=params.query.split(), limit=params.limit)
    return {"prompts": [row.to_dict() for row in rows]}


def register(registry: MethodRegistry) -> None:
    registry.register("images.favorite", FavoriteParams, favorite)
    registry.register("images.rate", RateParams, rate)
    registry.register("prompts.history", HistoryParams, history)
