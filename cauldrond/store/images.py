"""Images: the rows that point at committed PNG files, the gallery's marks on them (favourite, rating), and the
lookups recovery, the planner and the gallery need. Moving images to and from the trash is ``store/trash.py``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

from cauldrond.store.database import Database, StoreError, fetch_all, fetch_one, id_list, touch_experiments
from cauldrond.store.gallery import GalleryFilter, gallery_page
from cauldrond.store.integrity import ImageFile
from cauldrond.store.rows import ImageRow
from cauldrond.store.timestamps import utc_now


def check_relative_path(path: str) -> None:
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or "\\" in path or ".." in parts or ":" in parts[0]:
        raise StoreError(f"image path must be relative to the images folder and stay inside it, got {path!r}")


class ImageRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, image_id: int) -> ImageRow | None:
        async with self._database.read() as db:
            row = await fetch_one(db, "SELECT * FROM images WHERE id = ?", (int(image_id),))
        return ImageRow.from_row(row) if row is not None else None

    async def get_many(self, image_ids: Sequence[int]) -> dict[int, ImageRow]:
        """The images with these ids that exist, by id."""
        async with self._database.read() as db:
            rows = await fetch_all(
                db, "SELECT * FROM images WHERE id IN (SELECT value FROM json_each(?))", (id_list(image_ids),)
            )
        return {int(row["id"]): ImageRow.from_row(row) for row in rows}

    async def page(
        self, *, experiment_id: int | None, limit: int, after_id: int | None, before_id: int | None = None
    ) -> list[ImageRow]:
        """Images in ascending id after ``after_id``; or, given ``before_id``, in descending id below it (newest
        first: pass the last id of a page as the next ``before_id``). Keyset pagination: each page is an index
        range seek, however deep. Images in the trash are left out (grids and exports show a gap)."""
        query = GalleryFilter(experiment_id=experiment_id)
        if before_id is not None:
            return await gallery_page(self._database, query, limit=limit, after_id=before_id, newest=True)
        return await gallery_page(self._database, query, limit=limit, after_id=after_id, newest=False)

    async def gallery(self, query: GalleryFilter, *, limit: int, after_id: int | None, newest: bool) -> list[ImageRow]:
        """A page of the gallery (or of the trash, ``query.trashed``): see store/gallery.py."""
        return await gallery_page(self._database, query, limit=limit, after_id=after_id, newest=newest)

    async def set_favorite(self, image_id: int, favorite: bool) -> ImageRow | None:
        return await self._set(image_id, "favorite", int(favorite))

    async def set_rating(self, image_id: int, rating: int | None) -> ImageRow | None:
        """``rating`` 1-5, or None to clear it (the table's CHECK refuses anything else)."""
        return await self._set(image_id, "rating", rating)

    async def _set(self, image_id: int, column: str, value: int | None) -> ImageRow | None:
        if column not in ("favorite", "rating"):
            raise StoreError(f"no such mark {column!r}")
        # `column` is one of the two constants checked above; the values are placeholders.
        query = f"UPDATE images SET {column} = ? WHERE id = ? RETURNING *"  # nosec B608
        async with self._database.write() as db:
            row = await fetch_one(db, query, (value, int(image_id)))
        return ImageRow.from_row(row) if row is not None else None

    async def files(self) -> list[ImageFile]:
        """Every image's file as recorded (path, sha256, size): what recovery and ``images.verify`` check."""
        async with self._database.read() as db:
            rows = await fetch_all(
                db, "SELECT id, job_id, path, sha256, size_bytes, deleted_at IS NOT NULL FROM images ORDER BY id"
            )
        return [ImageFile(int(r[0]), int(r[1]), str(r[2]), str(r[3]), int(r[4]), bool(r[5])) for r in rows]

    async def recent_timings(self, limit: int) -> list[tuple[str, int, int, int, float, str, int, int, str]]:
        """(model, steps, width, height, wall_time_s, sampler, batch size, experiment id, created_at) of the latest
        images: what the planner's duration estimates are fitted to (experiments/estimates.py)."""
        async with self._database.read() as db:
            rows = await fetch_all(
                db,
                "SELECT json_extract(params, '$.model'), json_extract(params, '$.steps'), "
                "json_extract(params, '$.width'), json_extract(params, '$.height'), wall_time_s, "
                "json_extract(params, '$.sampler'), json_extract(metadata, '$.batch_size'), experiment_id, "
                "created_at FROM images WHERE wall_time_s > 0 ORDER BY id DESC LIMIT ?",
                (int(limit),),
            )
        return [
            (str(r[0]), int(r[1]), int(r[2]), int(r[3]), float(r[4]), str(r[5]), int(r[6] or 1), int(r[7]), str(r[8]))
            for r in rows
        ]

    async def drop_and_requeue(self, image_id: int, reason: str = "image file lost") -> int | None:
        """Forget an image whose file is gone or damaged and put its job back in the queue (or cancelled, if
        its experiment was cancelled). Returns the job id, or None if there is no such image. An image in the
        trash is only forgotten: the user deleted it, so its job is never generated again (None too)."""
        now = utc_now()
        async with self._database.write() as db:
            row = await fetch_one(db, "DELETE FROM images WHERE id = ? RETURNING job_id, deleted_at", (int(image_id),))
            if row is None or row[1] is not None:
                return None
            job_id = int(row[0])
            await db.execute(
                "UPDATE jobs SET last_error = ?, started_at = NULL, "
                "status = CASE WHEN (SELECT cancelled_at FROM experiments WHERE id = jobs.experiment_id) "
                "IS NULL THEN 'queued' ELSE 'cancelled' END, "
                "finished_at = CASE WHEN (SELECT cancelled_at FROM experiments "
                "WHERE id = jobs.experiment_id) IS NULL THEN NULL ELSE ? END "
                "WHERE id = ?",
                (reason, now, job_id),
            )
            await touch_experiments(db, id_list([job_id]), now)
        return job_id
