"""The gallery's query: images newest or oldest first, filtered, paged by id (keyset), trashed ones apart.

Every page is an index range seek on the id (the primary key, or an index that ends with it), however deep the
page: at 100,000 images the first page costs what it costs at 100 (tests/store/test_gallery_store.py reads the
query plan). Filters on annotations (words, tags) narrow candidates with ``EXISTS`` and are checked exactly on a
batch at a time, as ``images.search`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite

from cauldrond.store.annotations import TAGS_KEY, like_pattern, split_tags
from cauldrond.store.database import Database, fetch_all
from cauldrond.store.rows import ImageRow

# The schedule names A1111 appends to a sampler's name in its combined names ("DPM++ 2M Karras").
SCHEDULE_WORDS = ("karras", "exponential")
MAX_ROW_ID = 2**63 - 1


@dataclass(frozen=True)
class GalleryFilter:
    experiment_id: int | None = None
    model: str | None = None
    # An A1111 display name ("DPM++ 2M Karras": that sampler with that schedule) or a sampler's own name
    # ("DPM++ 2M": that sampler with any schedule).
    sampler: str | None = None
    favorite: bool | None = None
    min_rating: int | None = None
    words: tuple[str, ...] = ()  # each must appear in some annotation value (images.search's rule)
    tag: str | None = None  # an entry of the image's ``tags`` annotation, compared whole, case-insensitive
    trashed: bool = False  # the trash instead of the gallery


def sampler_condition(name: str) -> tuple[str, list[Any]]:
    sampler = "json_extract(params, '$.sampler')"
    condition, params = f"{sampler} = ?", [name]
    base, _, last = name.rpartition(" ")
    if base and last.lower() in SCHEDULE_WORDS:
        condition += f" OR ({sampler} = ? AND lower(json_extract(params, '$.schedule')) = ?)"
        params += [base, last.lower()]
    return f"({condition})", params


def conditions(query: GalleryFilter) -> tuple[list[str], list[Any]]:
    """Constant SQL fragments and their placeholders' values."""
    where = ["deleted_at IS NOT NULL" if query.trashed else "deleted_at IS NULL"]
    params: list[Any] = []
    if query.experiment_id is not None:
        where.append("experiment_id = ?")
        params.append(int(query.experiment_id))
    if query.model is not None:
        where.append("json_extract(params, '$.model') = ?")
        params.append(query.model)
    if query.sampler is not None:
        fragment, values = sampler_condition(query.sampler)
        where.append(fragment)
        params += values
    if query.favorite is not None:
        where.append("favorite = ?")
        params.append(int(query.favorite))
    if query.min_rating is not None:
        where.append("rating >= ?")
        params.append(int(query.min_rating))
    for word in query.words:
        where.append("EXISTS (SELECT 1 FROM annotations a WHERE a.image_id = images.id AND a.value LIKE ? ESCAPE '\\')")
        params.append(like_pattern(word))
    if query.tag is not None:
        where.append(
            "EXISTS (SELECT 1 FROM annotations a WHERE a.image_id = images.id AND a.key = ? AND a.value LIKE ? "
            "ESCAPE '\\')"
        )
        params += [TAGS_KEY, like_pattern(query.tag)]
    return where, params


def page_sql(query: GalleryFilter, *, newest: bool) -> tuple[str, list[Any]]:
    """The statement for one batch: its parameters end with the id bound and the batch size."""
    where, params = conditions(query)
    where.append("id < ?" if newest else "id > ?")
    # Every fragment is one of the constants above; every value is a placeholder.
    sql = f"SELECT * FROM images WHERE {' AND '.join(where)} ORDER BY id {'DESC' if newest else 'ASC'} LIMIT ?"  # nosec B608
    return sql, params


async def gallery_page(
    database: Database, query: GalleryFilter, *, limit: int, after_id: int | None, newest: bool
) -> list[ImageRow]:
    """Up to ``limit`` images after ``after_id`` in the chosen order (newest first: smaller ids)."""
    sql, params = page_sql(query, newest=newest)
    bound = (int(after_id) if after_id is not None else MAX_ROW_ID) if newest else int(after_id or 0)
    wanted = query.tag.casefold() if query.tag is not None else None
    found: list[ImageRow] = []
    batch = max(int(limit), 50) if wanted is not None else int(limit)
    while len(found) < limit:
        # The lock is taken per batch: a filter over many near-misses must not hold up the engine's commits.
        async with database.read() as db:
            rows = await fetch_all(db, sql, [*params, bound, batch])
            ids = [int(row["id"]) for row in rows]
            kept = await _tagged(db, ids, wanted) if wanted is not None and ids else set(ids)
        found += [ImageRow.from_row(row) for row in rows if int(row["id"]) in kept]
        if len(rows) < batch:
            break
        bound = ids[-1]
    return found[:limit]


async def _tagged(db: aiosqlite.Connection, image_ids: list[int], tag: str) -> set[int]:
    marks = ",".join("?" for _ in image_ids)
    rows = await fetch_all(
        db,
        f"SELECT image_id, value FROM annotations WHERE key = ? AND image_id IN ({marks})",  # nosec B608
        [TAGS_KEY, *image_ids],
    )
    return {int(r[0]) for r in rows if tag in {t.casefold() for t in split_tags(str(r[1]))}}
