"""How rows look on the wire (docs/rpc.md, "Shapes"), and the parameter types every method shares."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from cauldrond.media.trash import png_path
from cauldrond.queue import QueuedJob
from cauldrond.services import Services
from cauldrond.store import ExperimentRow, ImageRow

# SQLite row ids (and offsets) are signed 64-bit integers: a larger number can match no row, and SQLite cannot
# even bind it (OverflowError), so every id and offset is bounded here, once, and refused as invalid_params.
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
AfterId = Annotated[int, Field(ge=0, le=MAX_ROW_ID, description="Return rows with a larger id (paging)")]
Offset = Annotated[int, Field(ge=0, le=MAX_ROW_ID)]


def experiment_shape(row: ExperimentRow) -> dict[str, Any]:
    shape = row.to_dict()
    shape["status"] = row.status
    return shape


def experiment_summary_shape(row: ExperimentRow) -> dict[str, Any]:
    """An experiment without its spec (which may be a megabyte of cells): what a list shows."""
    shape = {key: value for key, value in row.to_dict().items() if key != "spec"}
    shape["status"] = row.status
    return shape


def image_shape(services: Services, row: ImageRow) -> dict[str, Any]:
    shape = row.to_dict()
    shape["url"] = f"/images/{row.id}.png"
    shape["thumb_url"] = f"/thumbs/256/{row.id}.webp"
    # A trashed image's file is in the trash (media/trash.py) until it is restored or the trash is emptied.
    file = png_path(services.settings.images_dir, row.path, trashed=row.deleted_at is not None)
    shape["file"] = str(file if file is not None else services.settings.images_dir / row.path)
    return shape


def queued_job_shape(job: QueuedJob, priority: int, status: str = "queued") -> dict[str, Any]:
    return {
        "id": job.job_id,
        "experiment_id": job.experiment_id,
        "idx": job.idx,
        "status": status,
        "params": job.params,
        "priority": priority,
    }
