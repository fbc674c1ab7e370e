"""Deleting images into the trash, restoring them, and emptying the trash for good.

Files move first (media/trash.py: renames within the data directory, folders fsynced), then the rows change in
one transaction; the caller announces only after that. Should the commit fail, the files move back. A crash
between the two is put right at the next start: recovery moves each file to where its row says it lives. Emptying
is the other way round (rows deleted and committed, then files removed), so a row never names a missing file.
One lock serialises these operations, and each runs shielded from its caller's cancellation (a client that hangs
up mid-delete must not leave half of its images moved).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from cauldrond.media.trash import move_all, move_thumbnails, png_path, remove_files, thumb_path
from cauldrond.store.database import Database, StoreError, fetch_all, id_list
from cauldrond.store.images import ImageRepository
from cauldrond.store.rows import ImageRow
from cauldrond.store.timestamps import utc_now


class TrashError(StoreError):
    """A delete or restore that cannot be done as asked; nothing was changed. ``image_ids`` names the culprits."""

    def __init__(self, code: str, message: str, image_ids: Sequence[int]) -> None:
        super().__init__(message)
        self.code = code
        self.image_ids = list(image_ids)


class TrashRepository:
    def __init__(self, database: Database, images: ImageRepository) -> None:
        self._database = database
        self._images = images
        self._lock = asyncio.Lock()

    async def delete(self, image_ids: Sequence[int], images_dir: Path, thumb_sizes: Sequence[int]) -> list[ImageRow]:
        """Move these images to the trash (all or none). Returns their rows, ``deleted_at`` set."""
        return await asyncio.shield(self._move(image_ids, images_dir, thumb_sizes, to_trash=True))

    async def restore(self, image_ids: Sequence[int], images_dir: Path, thumb_sizes: Sequence[int]) -> list[ImageRow]:
        """Bring these images back from the trash (all or none). Returns their rows."""
        return await asyncio.shield(self._move(image_ids, images_dir, thumb_sizes, to_trash=False))

    async def empty(self, images_dir: Path, thumb_sizes: Sequence[int]) -> list[int]:
        """Delete every trashed image for good: rows (with their annotations), then files. Returns the ids."""
        return await asyncio.shield(self._empty(images_dir, thumb_sizes))

    async def _move(
        self, image_ids: Sequence[int], images_dir: Path, thumb_sizes: Sequence[int], *, to_trash: bool
    ) -> list[ImageRow]:
        ids = list(dict.fromkeys(int(i) for i in image_ids))
        async with self._lock:
            rows = await self._images.get_many(ids)
            _check(ids, rows, to_trash=to_trash)
            moves = []
            for image_id in ids:
                source = png_path(images_dir, rows[image_id].path, trashed=to_trash is False)
                target = png_path(images_dir, rows[image_id].path, trashed=to_trash)
                if source is None or target is None:
                    raise TrashError("invalid_params", f"image {image_id} has an unsafe path", [image_id])
                moves.append((source, target))
            try:
                await asyncio.to_thread(move_all, moves)
            except FileNotFoundError as exc:
                raise TrashError("missing_file", f"an image's file is missing ({exc.filename})", ids) from exc
            try:
                changed = await self._commit(ids, utc_now() if to_trash else None)
            except BaseException:
                await asyncio.to_thread(move_all, [(target, source) for source, target in moves])
                raise
            await asyncio.to_thread(move_thumbnails, images_dir, ids, thumb_sizes, to_trash=to_trash)
        return [changed[image_id] for image_id in ids]

    async def _commit(self, ids: list[int], deleted_at: str | None) -> dict[int, ImageRow]:
        # The lock keeps every other trash change out; the WHERE guards the rows all the same.
        guard = "deleted_at IS NULL" if deleted_at is not None else "deleted_at IS NOT NULL"
        async with self._database.write() as db:
            rows = await fetch_all(
                db,
                # `guard` is one of two constants; every value is a placeholder.
                f"UPDATE images SET deleted_at = ? WHERE {guard} "  # nosec B608
                "AND id IN (SELECT value FROM json_each(?)) RETURNING *",
                (deleted_at, id_list(ids)),
            )
            if len(rows) != len(ids):
                raise StoreError("the images changed while they were being moved; nothing was changed")
        return {int(row["id"]): ImageRow.from_row(row) for row in rows}

    async def _empty(self, images_dir: Path, thumb_sizes: Sequence[int]) -> list[int]:
        async with self._lock:
            async with self._database.write() as db:
                rows = await fetch_all(db, "DELETE FROM images WHERE deleted_at IS NOT NULL RETURNING id, path")
            files: list[Path] = []
            for row in rows:
                image_id, png = int(row[0]), png_path(images_dir, str(row[1]), trashed=True)
                files += [png] if png is not None else []
                # Both places: a thumbnail that could not move along with its image stayed behind.
                files += [thumb_path(images_dir, n, image_id, trashed=t) for n in thumb_sizes for t in (True, False)]
            await asyncio.to_thread(remove_files, files)
        return sorted(int(row[0]) for row in rows)


def _check(ids: list[int], rows: dict[int, ImageRow], *, to_trash: bool) -> None:
    missing = [i for i in ids if i not in rows]
    if missing:
        raise TrashError("not_found", f"no image {', '.join(map(str, missing[:10]))}", missing)
    if to_trash:
        wrong = [i for i in ids if rows[i].deleted_at is not None]
        if wrong:
            raise TrashError("invalid_params", f"already in the trash: {', '.join(map(str, wrong[:10]))}", wrong)
    else:
        wrong = [i for i in ids if rows[i].deleted_at is None]
        if wrong:
            raise TrashError("invalid_params", f"not in the trash: {', '.join(map(str, wrong[:10]))}", wrong)
