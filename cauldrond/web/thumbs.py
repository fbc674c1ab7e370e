"""GET /thumbs/{256|768}/{image_id}.webp: an image's thumbnail, made on first request (media/thumbnails.py).

Not an open route: the guard middleware in app.py asks for the same token or pairing cookie as /images. A
trashed image's thumbnail is still served (from the trash), so an "undo" can show what it brings back.
"""

from __future__ import annotations

from aiohttp import web
from PIL import UnidentifiedImageError

from cauldrond.media.thumbnails import THUMB_SIZES, Thumbnailer
from cauldrond.media.trash import png_path, thumb_path
from cauldrond.services import Services
from cauldrond.work_pool import PoolBusy

ROUTE = r"/thumbs/{size:" + "|".join(str(size) for size in THUMB_SIZES) + r"}/{image_id:\d{1,18}}.webp"
CACHE_CONTROL = "private, max-age=31536000, immutable"


class ThumbnailRoute:
    def __init__(self, services: Services, thumbnailer: Thumbnailer | None = None) -> None:
        self._services = services
        self.thumbnailer = thumbnailer if thumbnailer is not None else Thumbnailer()

    def add_to(self, app: web.Application) -> None:
        app.router.add_get(ROUTE, self.handle)

        async def close(_app: web.Application) -> None:
            self.thumbnailer.close()

        app.on_cleanup.append(close)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # The pattern admits the fixed sizes and digits only; the file's path comes from the store.
        size, image_id = int(request.match_info["size"]), int(request.match_info["image_id"])
        row = await self._services.store.images.get(image_id)
        if row is None:
            raise web.HTTPNotFound(text=f"no image {image_id}")
        images_dir = self._services.settings.images_dir
        trashed = row.deleted_at is not None
        source = png_path(images_dir, row.path, trashed=trashed)
        if source is None:
            raise web.HTTPNotFound(text=f"image {image_id} is missing on disk")
        target = thumb_path(images_dir, size, image_id, trashed=trashed)
        try:
            await self.thumbnailer.ensure(source, target, size)
        except FileNotFoundError as exc:
            raise web.HTTPNotFound(text=f"image {image_id} is missing on disk") from exc
        except PoolBusy as exc:
            raise web.HTTPServiceUnavailable(text=str(exc), headers={"Retry-After": "1"}) from exc
        except (UnidentifiedImageError, OSError) as exc:
            raise web.HTTPInternalServerError(text=f"cannot make a thumbnail of image {image_id}") from exc
        return web.FileResponse(target, headers={"Content-Type": "image/webp", "Cache-Control": CACHE_CONTROL})
