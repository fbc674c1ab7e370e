"""devices.list, devices.revoke, pairing.create_code, pairing.create_login: the owner's controls over who may
use the daemon.

All of them need the local token (the owner's CLI on the daemon's machine): a paired phone must not mint codes
for more devices, sign in more browsers or revoke the others. They act on ``Services.access``, the same object
the web routes use, so they are registered with the other built-ins.
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


def require_local(ctx: RpcContext) -> None:
    """Refuse a caller that is not the owner's CLI on the daemon's machine (a paired device, say)."""
    if not ctx.credential.is_local:
        raise RpcError("forbidden", "only the local token (cauldronctl on the daemon's machine) may do this")


async def list_devices(ctx: RpcContext, params: NoParams) -> dict[str, Any]:
    """Paired devices: id, name, created, last used, revoked, open connections. Never the token."""
    require_local(ctx)
    connections = ctx.services.access.connections
    rows = await ctx.services.store.tokens.all()
    devices = [
        {
            "id": row.id,
            "name": row.name,
            "created_at": row.created_at,
            "last_used_at": row.last_used_at,
            "revoked_at": row.revoked_at,
            "connections": connections.count(row.id),
        }
        for row in rows
    ]
    return {"devices": devices}


async def revoke(ctx: RpcContext, params: RevokeParams) -> dict[str, Any]:
    """Revoke a device token and close its open connections at once."""
    require_local(ctx)
    tokens = ctx.services.store.tokens
    revoked = await tokens.revoke(params.token_id)
    if not revoked and not any(row.id == params.token_id for row in await tokens.all()):
        raise RpcError("not_found", f"no device token {params.token_id}", {"token_id": params.token_id})
    closed = await ctx.services.access.connections.close_token(params.token_id)
    return {"token_id": params.token_id, "revoked": revoked, "closed_connections": closed}


async def create_code(ctx: RpcContext, params: NoParams) -> dict[str, Any]:
    """A one-time pairing code (5 minutes), the pairing URL and a terminal QR code of it."""
    require_local(ctx)
    access = ctx.services.access
    code, ttl = access.pairing.create()
    return pairing_details(access, code, ttl)


async def create_login(ctx: RpcContext, params: NoParams) -> dict[str, Any]:
    """A one-time link (1 minute) that signs a browser on the daemon's own machine in to the app: opening it
    pairs that browser as a device named "browser on <host>" and sets its cookie. What `cauldronctl open` opens."""
    require_local(ctx)
    access = ctx.services.access
    if not access.local_url:
        raise RpcError("unavailable", "the daemon is not serving HTTP yet; try again in a moment")
    code, ttl = access.logins.create()
    return {"link": f"{access.local_url}/login?code={code}", "expires_in_s": int(ttl)}


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


def register(registry: MethodRegistry) -> None:
    registry.register("devices.list", NoParams, list_devices)
    registry.register("devices.revoke", RevokeParams, revoke)
    registry.register("pairing.create_code", NoParams, create_code)
    registry.register("pairing.create_login", NoParams, create_login)
