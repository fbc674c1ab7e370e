"""The table of RPC methods: each a ``noun.verb`` name, a pydantic params model that is validated before the
handler runs, a handler and its doc. ``rpc.describe`` is generated from this table."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from cauldrond.metrics import UNKNOWN_METHOD
from cauldrond.rpc.protocol import RpcError

if TYPE_CHECKING:
    from cauldrond.rpc.context import RpcContext

# noun.verb; a bare verb is kept for the one shortcut the API has always had ("generate").
METHOD_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")

Handler = Callable[["RpcContext", Any], Awaitable[Any]]


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class MethodSpec:
    name: str
    params: type[BaseModel]
    handler: Handler
    doc: str

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "doc": self.doc, "params": self.params.model_json_schema()}


class MethodRegistry:
    def __init__(self) -> None:
        self._methods: dict[str, MethodSpec] = {}

    def register(self, name: str, params: type[BaseModel], handler: Handler, doc: str | None = None) -> None:
        if not METHOD_NAME.match(name):
            raise ValueError(f"RPC method names are noun.verb in lower case, got {name!r}")
        if name in self._methods:
            raise ValueError(f"RPC method {name!r} is already registered")
        text = doc or handler.__doc__ or ""
        self._methods[name] = MethodSpec(name, params, handler, " ".join(text.split()))

    def names(self) -> list[str]:
        return sorted(self._methods)

    def describe(self) -> list[dict[str, Any]]:
        return [self._methods[name].describe() for name in self.names()]

    async def call(self, ctx: RpcContext, name: str, raw_params: dict[str, Any]) -> Any:
        # Counted and timed for /metrics; a name that is no method is counted as "unknown", so a client cannot
        # add label values.
        with ctx.services.metrics.rpc_request(name if name in self._methods else UNKNOWN_METHOD):
            return await self._validate_and_call(ctx, name, raw_params)

    async def _validate_and_call(self, ctx: RpcContext, name: str, raw_params: dict[str, Any]) -> Any:
        spec = self._methods.get(name)
        if spec is None:
            raise RpcError("method_not_found", f"no method {name!r}; rpc.describe lists them")
        try:
            params = spec.params.model_validate(raw_params, strict=True)
        except ValidationError as exc:
            failures = [{"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]} for err in exc.errors()]
            summary = "; ".join(f"{f['field'] or '(params)'}: {f['message']}" for f in failures[:5])
            raise RpcError("invalid_params", f"{name}: {summary}", failures) from exc
        return await spec.handler(ctx, params)
