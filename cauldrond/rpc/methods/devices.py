"""devices.list, devices.revoke, pairing.create_code: the owner's controls over paired devices.

All three need the local token (the owner's CLI on the daemon's machine): a paired phone must not mint codes
for more devices or revoke the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.methods.shapes import RowId
from cauldrond.rpc.protocol import RpcError
from cauldrond.rpc.registry import MethodRegistry, NoParams
from cauldrond.web.pairing import pairing_link, render_qr

if TYPE_CHECKING:
    from cauldrond.web.access import Access


class RevokeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token_id: RowId


def require_local(access: Access, ctx: RpcContext) -> None:
    """Refuse a caller that is not the owner's CLI on the daemon's machine (a paired device, say)."""
    credential = access.connections.credential_of(ctx.connection)
    if credential is None or not credential.is_local:
        raise RpcError("forbidden", "only the local token (cauldronctl on the daemon's machine) may do this")


class LanMethods:
    def __init__(self, access: Access) -> None:
        self._access = access

    def _require_local(self, ctx: RpcContext) -> None:
        require_local(self._access, ctx)

    async def list_devices(self, ctx: RpcContext, params: NoParams) -> dict[str, Any]:
        """Paired devices: id, name, created, last used, revoked, open connections. Never the token."""
        self._require_local(ctx)
        rows = await ctx.services.store.tokens.all()
        devices = [
            {
                "id": row.id,
                "name": row.name,
                "created_at": row.created_at,
                "last_used_at": row.last_used_at,
                "revoked_at": row.revoked_at,
                "connections": self._access.connections.count(row.id),
            }
            for row in rows
        ]
        return {"devices": devices}

    async def revoke(self, ctx: RpcContext, params: RevokeParams) -> dict[str, Any]:
        """Revoke a device token and close its open connections at once."""
        self._require_local(ctx)
        revoked = await ctx.services.store.tokens.revoke(params.token_id)
        if not revoked and not any(row.id == params.token_id for row in await ctx.services.store.tokens.all()):
            raise RpcError("not_found", f"no device token {params.token_id}", {"token_id": params.token_id})
        closed = await self._access.connections.close_token(params.token_id)
        return {"token_id": params.token_id, "revoked": revoked, "closed_connections": closed}

    async def create_code(self, ctx: RpcContext, params: NoParams) -> dict[str, Any]:
        """A one-time pairing code (5 minutes), the pairing URL and a terminal QR code of it."""
        self._require_local(ctx)
        code, ttl = self._access.pairing.create()
        return pairing_details(self._access, code, ttl)


def pairing_details(access: Access, code: str, ttl: float) -> dict[str, Any]:
    fingerprint = access.tls.fingerprint if access.tls is not None else None
    link = pairing_link(access.pair_url, code, fingerprint)
    return {
        "code": code,
        "expires_in_s": int(ttl),
        "url": access.pair_url,
        "link": link,
        "fingerprint": fingerprint,
        "qr": render_qr(link),
    }


def register(registry: MethodRegistry, access: Access) -> None:
    methods = LanMethods(access)
    registry.register("devices.list", NoParams, methods.list_devices)
    registry.register("devices.revoke", RevokeParams, methods.revoke)
    registry.register("pairing.create_code", NoParams, methods.create_code)
