"""Prompt history: every prompt and negative prompt pair an experiment used, so a builder can offer them again.

The pairs are recorded in the transaction that creates the experiment (``record_prompts``), whatever its kind
(sweeps, ``generate``, imports, re-runs), so the history is as durable as the experiments themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiosqlite

from cauldrond.store.annotations import like_pattern
from cauldrond.store.database import Database, fetch_all
from cauldrond.store.rows import PromptRow

Pair = tuple[str, str]
# A prompt axis or an import may give every cell its own prompt; the history keeps an experiment's first ones, so
# creating 10,000 cells stays one INSERT per job plus a bounded few.
MAX_PAIRS_PER_EXPERIMENT = 100


def prompt_pairs(cells: Sequence[Mapping[str, Any]]) -> list[Pair]:
    """The distinct (prompt, negative prompt) pairs of an experiment's cells, in the order they first appear (the
    first ``MAX_PAIRS_PER_EXPERIMENT``)."""
    pairs: dict[Pair, None] = {}
    for cell in cells:
        if len(pairs) >= MAX_PAIRS_PER_EXPERIMENT:
            break
        prompt = cell.get("prompt")
        if isinstance(prompt, str):
            negative = cell.get("negative_prompt")
            pairs[(prompt, negative if isinstance(negative, str) else "")] = None
    return list(pairs)


async def record_prompts(db: aiosqlite.Connection, pairs: Sequence[Pair], now: str) -> None:
    """Count one use of each pair (inside the caller's transaction)."""
    await db.executemany(
        "INSERT INTO prompt_history (prompt, negative_prompt, uses, last_used_at) VALUES (?, ?, 1, ?) "
        "ON CONFLICT (prompt, negative_prompt) DO UPDATE SET uses = uses + 1, last_used_at = excluded.last_used_at",
        [(prompt, negative, now) for prompt, negative in pairs],
    )


class PromptRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def history(self, *, words: Sequence[str], limit: int) -> list[PromptRow]:
        """The most recently used pairs first; with ``words``, only those whose prompt contains every word
        (case-insensitive for ASCII letters, as SQLite's LIKE is)."""
        where = " AND ".join("prompt LIKE ? ESCAPE '\\'" for _ in words) or "1"
        async with self._database.read() as db:
            rows = await fetch_all(
                db,
                # `where` repeats one constant fragment; every value is a placeholder.
                f"SELECT prompt, negative_prompt, uses, last_used_at FROM prompt_history WHERE {where} "  # nosec B608
                "ORDER BY last_used_at DESC, id DESC LIMIT ?",
                [*(like_pattern(word) for word in words), int(limit)],
            )
        return [PromptRow.from_row(row) for row in rows]
