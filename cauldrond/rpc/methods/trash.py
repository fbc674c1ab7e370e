"""images.delete, images.restore, trash.list, trash.empty: deleting images with an undo.

A deleted image's files move to ``<data_dir>/trash/`` and its row is marked (store/trash.py); it leaves the
gallery, ``images.list``, ``images.search``, grids and exports (a gap where it was) but keeps its record, so
``images.restore`` brings it back byte for byte. Only ``trash.empty`` deletes for good, and only for the owner
(the local token), with ``confirm: true``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cauldrond.media.thumbnails import THUMB_SIZES
from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.methods.devices import require_local
from cauldrond.rpc.methods.gallery import gallery_item
from cauldrond.rpc.methods.shapes import AfterId, RowId
from cauldrond.rpc.protocol import RpcError
from cauldrond.rpc.registry import MethodRegistry
from cauldrond.store import ImageRow
from cauldrond.store.gallery import GalleryFilter
from cauldrond.store.trash import TrashError

MAX_IMAGES_PER_CALL = 500


class ImageIdsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_ids: list[RowId] = Field(min_length=1, max_length=MAX_IMAGES_PER_CALL)


async def _move(ctx: RpcContext, params: ImageIdsParams, *, to_trash: bool) -> list[ImageRow]:
    store, images_dir = ctx.services.store, ctx.services.settings.images_dir
    move = store.trash.delete if to_trash else store.trash.restore
    try:
        rows = await move(params.image_ids, images_dir, THUMB_SIZES)
    except TrashError as exc:
        code = exc.code if exc.code in ("not_found", "invalid_params") else "failed"
        raise RpcError(code, str(exc), {"image_ids": exc.image_ids[:MAX_IMAGES_PER_CALL]}) from exc
    except OSError as exc:
        raise RpcError("failed", f"could not move the files; nothing was changed: {exc.strerror or exc}") from exc
    return rows


async def delete(ctx: RpcContext, params: ImageIdsParams) -> dict[str, Any]:
    """Move images to the trash (all or none: an unknown or already trashed id refuses the whole call). Their
    files go to the trash folder; images.restore undoes it. Announces image.deleted."""
    rows = await _move(ctx, params, to_trash=True)
    ids = [row.id for row in rows]
    deleted_at = rows[0].deleted_at
    ctx.services.events.publish("image.deleted", image_ids=ids, deleted_at=deleted_at)
    return {"image_ids": ids, "deleted_at": deleted_at}


async def restore(ctx: RpcContext, params: ImageIdsParams) -> dict[str, Any]:
    """Bring images back from the trash (all or none: each must be in the trash). Announces image.restored."""
    rows = await _move(ctx, params, to_trash=False)
    ctx.services.events.publish("image.restored", image_ids=[row.id for row in rows])
    return {"image_ids": [row.id for row in rows], "images": [gallery_item(ctx.services, row) for row in rows]}


class TrashListParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after_id: AfterId | None = Field(default=None, description="The previous page's next_after_id (smaller ids)")
    limit: int = Field(default=100, ge=1, le=500)


async def list_trash(ctx: RpcContext, params: TrashListParams) -> dict[str, Any]:
    """Images in the trash, newest image first (by id), each with its deleted_at; page with next_after_id."""
    rows = await ctx.services.store.images.gallery(
        GalleryFilter(trashed=True), limit=params.limit + 1, after_id=params.after_id, newest=True
    )
    page = rows[: params.limit]
    return {
        "images": [gallery_item(ctx.services, row) for row in page],
        "next_after_id": page[-1].id if len(rows) > params.limit else None,
    }


class EmptyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: bool = Field(description="Must be true: emptying the trash cannot be undone")


async def empty(ctx: RpcContext, params: EmptyParams) -> dict[str, Any]:
    """Delete every image in the trash for good: rows, annotations, PNGs and thumbnails. Needs confirm: true
    and the local token (a paired device cannot). Their jobs stay done, without an image."""
    require_local(ctx)
    if params.confirm is not True:
        raise RpcError("invalid_params", "emptying the trash cannot be undone: pass confirm: true")
    ids = await ctx.services.store.trash.empty(ctx.services.settings.images_dir, THUMB_SIZES)
    ctx.services.events.publish("trash.emptied", deleted=len(ids))
    return {"deleted": len(ids), "image_ids": ids[:MAX_IMAGES_PER_CALL]}


def register(registry: MethodRegistry) -> None:
    registry.register("images.delete", ImageIdsParams, delete)
    registry.register("images.restore", ImageIdsParams, restore)
    registry.register("trash.list", TrashListParams, list_trash)
    registry.register("trash.empty", EmptyParams, empty)
