"""Store queries for plugins: post-processing outcomes per image and plugin, and searching images by what the
post-processors annotated. A mixin of ``Store`` so store.py keeps one concept per section."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cauldrond.store.rows import ImageRow, _as_dict

if TYPE_CHECKING:
    import aiosqlite

PLUGIN_RUN_STATUSES = ("ok", "failed", "timeout")
# The annotation key whose value is a comma-separated tag list (the convention docs/plugins.md states).
TAGS_KEY = "tags"


@dataclass(frozen=True)
class PluginRunRow:
    image_id: int
    plugin: str
    status: str
    error: str | None
    duration_s: float
    finished_at: str

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


def split_tags(value: str) -> list[str]:
    return [tag.strip() for tag in value.split(",") if tag.strip()]


def _like_pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class PluginRunsMixin:
    if TYPE_CHECKING:

        def _read(self) -> contextlib.AbstractAsyncContextManager[aiosqlite.Connection]: ...

        def _write(self) -> contextlib.AbstractAsyncContextManager[aiosqlite.Connection]: ...

        @staticmethod
        async def _all(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]: ...

    async def record_plugin_run(
        self, image_id: int, plugin: str, status: str, error: str | None, duration_s: float, finished_at: str
    ) -> None:
        """Keep the latest outcome of ``plugin`` on one image (a rerun of the plugin replaces it)."""
        if status not in PLUGIN_RUN_STATUSES:
            raise ValueError(f"plugin run status must be one of {PLUGIN_RUN_STATUSES}, got {status!r}")
        async with self._write() as db:
            # The image may have been dropped meanwhile (recovery); then there is nothing to record against.
            await db.execute(
                "INSERT INTO plugin_runs (image_id, plugin, status, error, duration_s, finished_at) "
                "SELECT id, ?, ?, ?, ?, ? FROM images WHERE id = ? "
                "ON CONFLICT (image_id, plugin) DO UPDATE SET status = excluded.status, error = excluded.error, "
                "duration_s = excluded.duration_s, finished_at = excluded.finished_at",
                (plugin, status, error, float(duration_s), finished_at, int(image_id)),
            )

    async def get_plugin_runs(self, image_id: int) -> list[PluginRunRow]:
        async with self._read() as db:
            rows = await self._all(
                db,
                "SELECT image_id, plugin, status, error, duration_s, finished_at FROM plugin_runs "
                "WHERE image_id = ? ORDER BY plugin",
                (int(image_id),),
            )
        return [PluginRunRow(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    async def search_images(
        self, *, words: Sequence[str], tag: str | None, limit: int, after_id: int | None
    ) -> list[ImageRow]:
        """Images (ascending id after ``after_id``) whose annotations contain every word (case-insensitive,
        in any value) and, if ``tag`` is given, whose ``tags`` annotation lists it."""
        from cauldrond.store.store import _image  # the row decoder lives with the rest of the image queries

        conditions = []
        params: list[Any] = [int(after_id) if after_id is not None else 0]
        for word in words:
            conditions.append(
                "EXISTS (SELECT 1 FROM annotations a WHERE a.image_id = images.id AND a.value LIKE ? ESCAPE '\\')"
            )
            params.append(_like_pattern(word))
        if tag is not None:
            # LIKE narrows the candidates; the exact tag comparison happens below, on the split list.
            conditions.append(
                "EXISTS (SELECT 1 FROM annotations a WHERE a.image_id = images.id AND a.key = ? "
                "AND a.value LIKE ? ESCAPE '\\')"
            )
            params += [TAGS_KEY, _like_pattern(tag)]
        where = "".join(f" AND {condition}" for condition in conditions)
        wanted = tag.casefold() if tag is not None else None
        found: list[ImageRow] = []
        batch = max(int(limit), 50)
        while len(found) < limit:
            # The lock is taken per batch: a search over many near-misses must not hold up the engine's commits.
            async with self._read() as db:
                # `where` joins constant SQL fragments; every value is a placeholder.
                query = f"SELECT * FROM images WHERE id > ?{where} ORDER BY id LIMIT ?"  # nosec B608
                rows = await self._all(db, query, [*params, batch])
                ids = [int(row["id"]) for row in rows]
                tagged = await self._tagged(db, ids, wanted) if wanted is not None and ids else set(ids)
            found += [_image(row) for row in rows if int(row["id"]) in tagged]
            if len(rows) < batch:
                break
            params[0] = ids[-1]
        return found[:limit]

    async def _tagged(self, db: aiosqlite.Connection, image_ids: list[int], tag: str) -> set[int]:
        marks = ",".join("?" for _ in image_ids)
        rows = await self._all(
            db,
            f"SELECT image_id, value FROM annotations WHERE key = ? AND image_id IN ({marks})",  # nosec B608
            [TAGS_KEY, *image_ids],
        )
        return {int(r[0]) for r in rows if tag in {t.casefold() for t in split_tags(str(r[1]))}}
