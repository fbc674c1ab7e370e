"""events.subscribe"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cauldrond.events import ALL_TYPES
from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.protocol import RpcError
from cauldrond.rpc.registry import MethodRegistry

# Every event type the daemon publishes (docs/rpc.md, "Events"). A test reads each publish call in the package
# and fails when one is missing here, so a filter naming a type that can never come is refused, not kept.
EVENT_TYPES = frozenset(
    {
        "experiment.created",
        "experiment.finished",
        "experiment.cancelled",
        "experiment.priority",
        "experiment.retried",
        "job.started",
        "job.progress",
        "job.preview",
        "job.done",
        "job.failed",
        "job.cancelled",
        "job.requeued",
        "job.suspected",
        "job.quarantined",
        "queue.paused",
        "queue.resumed",
        "events.dropped",
        "image.updated",
        "image.deleted",
        "image.restored",
        "trash.emptied",
    }
)


class SubscribeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    types: list[str] | None = Field(
        default=None,
        max_length=100,
        description='Event types; all but job.preview when omitted; "*" in the list stands for that same set',
    )


async def subscribe(ctx: RpcContext, params: SubscribeParams) -> dict[str, Any]:
    """Receive events on this connection as [2, "event", [event]] notifications. Calling again replaces the
    filter. Unknown types are refused with the list of known ones. ``job.preview`` comes only when named."""
    unknown = sorted(set(params.types or ()) - EVENT_TYPES - {ALL_TYPES})
    if unknown:
        raise RpcError(
            "invalid_params",
            f"unknown event type(s) {', '.join(repr(t[:60]) for t in unknown[:5])}; "
            f"known types: {', '.join(sorted(EVENT_TYPES))}",
            {"unknown": unknown[:5], "known": sorted(EVENT_TYPES)},
        )
    ctx.connection.subscribe(params.types)
    return {"subscribed": params.types or ["*"]}


def register(registry: MethodRegistry) -> None:
    registry.register("events.subscribe", SubscribeParams, subscribe)
