"""Thumbnails: a small WebP of each image at fixed sizes, made once, on first request, off the event loop.

``<data_dir>/thumbs/<size>/<id>.webp`` (``<data_dir>/trash/thumbs/...`` while the image is in the trash; see
media/trash.py), the longest side ``size`` pixels or the image's own if smaller (never enlarged). Written like
the PNGs (temp name, fsync, rename, folder fsync), so a reader never sees half a file; an image's pixels never
change after its row is committed, so a thumbnail, once made, is valid for good and is served as immutable.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from PIL import Image

from cauldrond.media.png import write_bytes_atomic
from cauldrond.work_pool import WorkPool

THUMB_SIZES = (256, 768)
WEBP_QUALITY = 80
WEBP_METHOD = 4  # Pillow's 0-6 speed/size trade-off; 4 is libwebp's default


def encode_thumbnail(source: Path, size: int) -> bytes:
    """The WebP bytes of ``source`` scaled to fit ``size`` x ``size`` (aspect kept, never enlarged)."""
    with Image.open(source) as image:
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        converted = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    buffer = io.BytesIO()
    converted.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    return buffer.getvalue()


def write_thumbnail(source: Path, target: Path, size: int) -> Path:
    """Make ``target`` from ``source`` (blocking: Pillow and fsync) unless another request made it first."""
    if target.is_file():
        return target
    return write_bytes_atomic(encode_thumbnail(source, size), target.parent, target.name)


class Thumbnailer:
    """Makes thumbnails on threads of its own; two requests for one missing thumbnail wait for one making."""

    def __init__(self, workers: int = 2) -> None:
        # A browser asks for a page of tiles at once (six connections each); the wait list leaves room for several.
        self.pool = WorkPool("thumbnails", workers=workers, max_waiting=256)
        self._making: dict[Path, asyncio.Future[Path]] = {}
        self.made = 0  # thumbnails written since start (what a test or an operator can read)

    def close(self) -> None:
        self.pool.close()

    async def ensure(self, source: Path, target: Path, size: int) -> Path:
        """``target``, made from ``source`` first if it does not exist yet."""
        if target.is_file():  # noqa: ASYNC240 - one stat on the loop costs less than a hop to a thread
            return target
        pending = self._making.get(target)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Path] = asyncio.get_running_loop().create_future()
        self._making[target] = future
        try:
            made = await self.pool.run(write_thumbnail, source, target, size)
            self.made += 1
            future.set_result(made)
            return made
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved: nobody else may be waiting
            raise
        finally:
            del self._making[target]
