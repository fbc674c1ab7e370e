"""Annotations: what post-processors say about an image (plugin, key, value), and searching images by them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiosqlite

from cauldrond.store.database import Database, fetch_all
from cauldrond.store.rows import AnnotationRow, ImageRow
from cauldrond.store.timestamps import utc_now

# The annotation key whose value is a comma-separated tag list (the convention docs/plugins.md states).
TAGS_KEY = "tags"


def split_tags(value: str) -> list[str]:
    return [tag.strip() for tag in value.split(",") if tag.strip()]


def like_pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class AnnotationRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def save(self, image_id: int, plugin: str, values: Mapping[str, str]) -> None:
        """Insert or replace ``plugin``'s annotations of one image."""
        now = utc_now()
        async with self._database.write() as db:
            await db.executemany(
                "INSERT INTO annotations (image_id, plugin, key, value, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (image_id, plugin, key) DO UPDATE SET value = excluded.value, "
                "created_at = excluded.created_at",
                [(int(image_id), plugin, str(key), str(value), now) for key, value in values.items()],
            )

    async def get(self, image_id: int) -> list[AnnotationRow]:
        async with self._database.read() as db:
            rows = await fetch_all(
                db,
                "SELECT image_id, plugin, key, value, created_at FROM annotations WHERE image_id = ? "
                "ORDER BY plugin, key",
                (int(image_id),),
            )
        return [AnnotationRow(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def search_images(
        self, *, words: Sequence[str], tag: str | None, limit: int, after_id: int | None
    ) -> list[ImageRow]:
        """Images (ascending id after ``after_id``) whose annotations contain every word (case-insensitive,
        in any value) and, if ``tag`` is given, whose ``tags`` annotation lists it."""
        conditions = []
        params: list[Any] = [int(after_id) if after_id is not None else 0]
        for word in words:
            conditions.append(
                "EXISTS (SELECT 1 FROM annotations a WHERE a.image_id = images.id AND a.value LIKE ? ESCAPE '\\')"
            )
            params.append(like_pattern(word))
        if tag is not None:
            # LIKE narrows the candidates; the exact tag comparison happens below, on the split list.
            conditions.append(
                "EXISTS (SELECT 1 FROM annotations a WHERE a.image_id = images.id AND a.key = ? "
                "AND a.value LIKE ? ESCAPE '\\')"
            )
            params += [TAGS_KEY, like_pattern(tag)]
        where = "".join(f" AND {condition}" for condition in conditions)
        wanted = tag.casefold() if tag is not None else None
        found: list[ImageRow] = []
        batch = max(int(limit), 50)
        while len(found) < limit:
            # The lock is taken per batch: a search over many near-misses must not hold up the engine's commits.
            async with self._database.read() as db:
                # `where` joins constant SQL fragments; every value is a placeholder.
                # Images in the trash are not found (the gallery's rule, store/gallery.py).
                query = f"SELECT * FROM images WHERE id > ? AND deleted_at IS NULL{where} ORDER BY id LIMIT ?"  # nosec B608
                rows = await fetch_all(db, query, [*params, batch])
                ids = [int(row["id"]) for row in rows]
                tagged = await self._tagged(db, ids, wanted) if wanted is not None and ids else set(ids)
            found += [ImageRow.from_row(row) for row in rows if int(row["id"]) in tagged]
            if len(rows) < batch:
                break
            params[0] = ids[-1]
        return found[:limit]

    async def _tagged(self, db: aiosqlite.Connection, image_ids: list[int], tag: str) -> set[int]:
        marks = ",".join("?" for _ in image_ids)
        rows = await fetch_all(
            db,
            f"SELECT image_id, value FROM annotations WHERE key = ? AND image_id IN ({marks})",  # nosec B608
            [TAGS_KEY, *image_ids],
        )
        return {int(r[0]) for r in rows if tag in {t.casefold() for t in split_tags(str(r[1]))}}
