"""How rows look on the wire (docs/rpc.md, "Shapes")."""

from __future__ import annotations

from typing import Any

from cauldrond.queue import QueuedJob
from cauldrond.services import Services
from cauldrond.store import ExperimentRow, ImageRow


def experiment_shape(row: ExperimentRow) -> dict[str, Any]:
    shape = row.to_dict()
    shape["status"] = row.status
    return shape


def image_shape(services: Services, row: ImageRow) -> dict[str, Any]:
    shape = row.to_dict()
    shape["url"] = f"/images/{row.id}.png"
    shape["file"] = str(services.settings.images_dir / row.path)
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
