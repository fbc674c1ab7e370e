"""The batch size measured as best per (model, image size, device): read at start, written when a probe ends."""

from __future__ import annotations

from dataclasses import dataclass

from cauldrond.store.database import Database
from cauldrond.store.timestamps import utc_now


@dataclass(frozen=True)
class BatchSizeChoice:
    model: str
    width: int
    height: int
    device: str
    batch_size: int
    images_per_s: float  # measured at batch_size
    probed_up_to: int  # the max_batch_size in force when it was measured
    measured_at: str = ""


class BatchSizeRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def all(self) -> list[BatchSizeChoice]:
        async with (
            self._database.read() as db,
            db.execute(
                "SELECT model, width, height, device, batch_size, images_per_s, probed_up_to, measured_at "
                "FROM batch_sizes ORDER BY model, width, height, device"
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return [
            BatchSizeChoice(
                model=str(row[0]),
                width=int(row[1]),
                height=int(row[2]),
                device=str(row[3]),
                batch_size=int(row[4]),
                images_per_s=float(row[5]),
                probed_up_to=int(row[6]),
                measured_at=str(row[7]),
            )
            for row in rows
        ]

    async def put(self, choice: BatchSizeChoice) -> None:
        """Record (or replace) the choice for its (model, width, height, device)."""
        async with self._database.write() as db:
            await db.execute(
                "INSERT INTO batch_sizes (model, width, height, device, batch_size, images_per_s, probed_up_to, "
                "measured_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model, width, height, device) DO UPDATE "
                "SET batch_size = excluded.batch_size, images_per_s = excluded.images_per_s, "
                "probed_up_to = excluded.probed_up_to, measured_at = excluded.measured_at",
                (
                    choice.model,
                    choice.width,
                    choice.height,
                    choice.device,
                    choice.batch_size,
                    choice.images_per_s,
                    choice.probed_up_to,
                    utc_now(),
                ),
            )
