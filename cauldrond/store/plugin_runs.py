"""Post-processing outcomes: the latest result of each plugin on each image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cauldrond.store.database import Database, fetch_all
from cauldrond.store.rows import _as_dict

PLUGIN_RUN_STATUSES = ("ok", "failed", "timeout")


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


class PluginRunRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def record(
        self, image_id: int, plugin: str, status: str, error: str | None, duration_s: float, finished_at: str
    ) -> None:
        """Keep the latest outcome of ``plugin`` on one image (a rerun of the plugin replaces it)."""
        if status not in PLUGIN_RUN_STATUSES:
            raise ValueError(f"plugin run status must be one of {PLUGIN_RUN_STATUSES}, got {status!r}")
        async with self._database.write() as db:
            # The image may have been dropped meanwhile (recovery); then there is nothing to record against.
            await db.execute(
                "INSERT INTO plugin_runs (image_id, plugin, status, error, duration_s, finished_at) "
                "SELECT id, ?, ?, ?, ?, ? FROM images WHERE id = ? "
                "ON CONFLICT (image_id, plugin) DO UPDATE SET status = excluded.status, error = excluded.error, "
                "duration_s = excluded.duration_s, finished_at = excluded.finished_at",
                (plugin, status, error, float(duration_s), finished_at, int(image_id)),
            )

    async def get(self, image_id: int) -> list[PluginRunRow]:
        async with self._database.read() as db:
            rows = await fetch_all(
                db,
                "SELECT image_id, plugin, status, error, duration_s, finished_at FROM plugin_runs "
                "WHERE image_id = ? ORDER BY plugin",
                (int(image_id),),
            )
        return [PluginRunRow(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]
