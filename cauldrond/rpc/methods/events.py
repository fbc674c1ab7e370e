"""events.subscribe"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.registry import MethodRegistry


class SubscribeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    types: list[str] | None = Field(default=None, max_length=100, description="Event types; all when omitted")


async def subscribe(ctx: RpcContext, params: SubscribeParams) -> dict[str, Any]:
    """Receive events on this connection as [2, "event", [event]] notifications. Calling again replaces the
    filter."""
    ctx.connection.subscribe(params.types)
    return {"subscribed": params.types or ["*"]}


def register(registry: MethodRegistry) -> None:
    registry.register("events.subscribe", SubscribeParams, subscribe)
