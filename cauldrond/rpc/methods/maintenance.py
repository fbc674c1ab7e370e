"""backups.create and images.verify: the owner's tools for running the daemon for months (docs/operations.md)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cauldrond.media.trash import png_path
from cauldrond.queue import QueuedJob
from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.methods.devices import require_local
from cauldrond.rpc.protocol import RpcError
from cauldrond.rpc.registry import MethodRegistry
from cauldrond.store.backup import BackupError, write_backup
from cauldrond.store.integrity import ImageFile, check_files

log = logging.getLogger(__name__)

# Listing thousands of damaged files helps nobody; the counts are always whole.
MAX_LISTED = 1000


class BackupParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dest: str = Field(
        min_length=1, max_length=4096, description="Absolute path of a new or empty folder (or an earlier backup)"
    )


class VerifyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quick: bool = Field(default=False, description="Compare sizes only (as start-up does), not sha256 hashes")
    requeue: bool = Field(default=False, description="Drop missing/altered images and generate their jobs again")


class MaintenanceMethods:
    def __init__(self) -> None:
        # One long-running maintenance task at a time, on threads of its own (Services.maintenance_pool, never
        # the default executor). One registry, so one lock, per daemon.
        self._busy = asyncio.Lock()

    async def backup(self, ctx: RpcContext, params: BackupParams) -> dict[str, Any]:
        """Copy the database (SQLite's online backup API) and its image files into ``dest`` on the daemon's
        machine while work goes on; files are hash-checked as they are copied. Local token only."""
        require_local(ctx)
        settings = ctx.services.settings
        async with self._exclusive("a backup or verify"):
            try:
                report = await ctx.services.maintenance_pool.run(
                    write_backup, ctx.services.store.path, settings.images_dir, Path(params.dest), settings.data_dir
                )
            except BackupError as exc:
                raise RpcError("invalid_params", str(exc)) from exc
            except OSError as exc:
                raise RpcError("backup_failed", f"the backup to {params.dest!r} failed: {exc}") from exc
        log.info("backup to %s: %d images (%d copied)", params.dest, report.images, report.copied)
        return report.to_dict()

    async def verify(self, ctx: RpcContext, params: VerifyParams) -> dict[str, Any]:
        """Check every image file against its recorded sha256 (or size, with ``quick``) and report the missing and
        altered ones; with ``requeue``, forget those images and generate their jobs again."""
        if params.requeue:
            require_local(ctx)
        store, images_dir = ctx.services.store, ctx.services.settings.images_dir
        async with self._exclusive("a backup or verify"):
            files = await store.images.files()
            pool = ctx.services.maintenance_pool
            states = await check_files(images_dir, files, full=not params.quick, run=pool.run, workers=2)
        bad = [(image, state) for image, state in zip(files, states, strict=True) if state != "ok"]
        requeued = [await self._requeue(ctx, image, state) for image, state in bad] if params.requeue else []
        return {
            "checked": len(files),
            "ok": len(files) - len(bad),
            "depth": "size" if params.quick else "sha256",
            "missing": _listed(image for image, state in bad if state == "missing"),
            "altered": _listed(image for image, state in bad if state == "altered"),
            "missing_count": sum(state == "missing" for _image, state in bad),
            "altered_count": sum(state == "altered" for _image, state in bad),
            "requeued": [job_id for job_id in requeued if job_id is not None],
        }

    async def _requeue(self, ctx: RpcContext, image: ImageFile, state: str) -> int | None:
        services = ctx.services
        job_id = await services.store.images.drop_and_requeue(image.image_id, reason=f"image file {state} (verify)")
        target = png_path(services.settings.images_dir, image.path, trashed=image.trashed)
        if target is not None and state == "altered":
            # The row is gone, so the damaged file is an orphan now; the regenerated image takes its place.
            await asyncio.to_thread(target.unlink, True)
        job = await services.store.jobs.get(job_id) if job_id is not None else None
        experiment = await services.store.experiments.get(job.experiment_id) if job is not None else None
        if job is None or experiment is None or job.status != "queued":
            return None
        services.queue.add(QueuedJob(job.id, job.experiment_id, job.idx, job.params), experiment.priority)
        services.events.publish("job.requeued", job_id=job.id, experiment_id=job.experiment_id, reason="verify")
        return job.id

    def _exclusive(self, what: str) -> asyncio.Lock:
        if self._busy.locked():
            raise RpcError("busy", f"{what} is already running; try again when it has finished")
        return self._busy


def _listed(images: Iterable[ImageFile]) -> list[dict[str, Any]]:
    return [
        {"image_id": image.image_id, "job_id": image.job_id, "path": image.path}
        for image in itertools.islice(images, MAX_LISTED)
    ]


def register(registry: MethodRegistry) -> None:
    methods = MaintenanceMethods()
    registry.register("backups.create", BackupParams, methods.backup)
    registry.register("images.verify", VerifyParams, methods.verify)
