"""queue.list, queue.pause, queue.resume"""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.methods.shapes import Offset, queued_job_shape
from cauldrond.rpc.registry import MethodRegistry, NoParams


class ListParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=100, ge=1, le=1000)
    offset: Offset = 0


async def list_queue(ctx: RpcContext, params: ListParams) -> dict[str, Any]:
    """Queued jobs in the order they will run, and the jobs running now."""
    queue = ctx.services.queue
    page = itertools.islice(queue.ordered(), params.offset, params.offset + params.limit)
    running = [
        queued_job_shape(job, queue.priority_of(job.experiment_id) or 0, status="running")
        for job in ctx.services.engine.running_jobs
    ]
    return {
        "paused": queue.paused or ctx.services.engine.storage.guard.paused,
        "paused_reason": ctx.services.engine.storage.guard.reason,
        "total": len(queue),
        "running": running,
        "jobs": [queued_job_shape(job, priority) for priority, job in page],
    }


async def pause(ctx: RpcContext, params: NoParams) -> dict[str, Any]:
    """Stop starting new batches; the running batch finishes."""
    ctx.services.queue.pause()
    ctx.services.events.publish("queue.paused")
    return {"paused": True}


async def resume(ctx: RpcContext, params: NoParams) -> dict[str, Any]:
    """Start taking batches again; also lifts a pause for disk space or a storage error (checked again before
    the next batch)."""
    ctx.services.queue.resume()
    ctx.services.engine.resume()
    ctx.services.events.publish("queue.resumed")
    return {"paused": False}


def register(registry: MethodRegistry) -> None:
    registry.register("queue.list", ListParams, list_queue)
    registry.register("queue.pause", NoParams, pause)
    registry.register("queue.resume", NoParams, resume)
