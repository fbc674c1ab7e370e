"""loras.list, vaes.list, embeddings.list: what ``<models_dir>/loras/``, ``vae/`` and ``embeddings/`` hold."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.registry import MethodRegistry, NoParams


async def _listing(ctx: RpcContext, kind: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    for provider in ctx.services.providers.all():
        list_extras = getattr(provider, "list_extras", None)
        if callable(list_extras):
            for entry in await asyncio.to_thread(_entries, list_extras, kind):
                listed.append({**entry, "provider": provider.name})
    return listed


def _entries(list_extras: Callable[[str], list[Any]], kind: str) -> list[dict[str, Any]]:
    # In a worker thread: a file's first hash reads it whole (then it is remembered per file version).
    return [{**extra.to_dict(), "short_hash": extra.short_hash()} for extra in list_extras(kind)]


async def list_loras(ctx: RpcContext, params: NoParams) -> dict[str, Any]:
    """LoRAs in <models_dir>/loras/ by name (the file stem, as in <lora:name:weight>), with path, usable (false for
    a pickle .pt/.ckpt, which is never loaded), a note and short_hash (A1111's, as in "Lora hashes")."""
    return {"loras": await _listing(ctx, "lora")}


async def list_vaes(ctx: RpcContext, params: NoParams) -> dict[str, Any]:
    """VAEs in <models_dir>/vae/ by name (a file's name with its extension, as A1111 names it, or a diffusers
    folder's name), with path, usable, a note and short_hash (A1111's "VAE hash"). The vae param takes the name;
    empty means the model's own."""
    return {"vaes": await _listing(ctx, "vae")}


async def list_embeddings(ctx: RpcContext, params: NoParams) -> dict[str, Any]:
    """Textual-inversion embeddings in <models_dir>/embeddings/ by name (the file stem: the word a prompt uses),
    with path, usable, a note and short_hash (A1111's, as in "TI hashes")."""
    return {"embeddings": await _listing(ctx, "embedding")}


def register(registry: MethodRegistry) -> None:
    registry.register("loras.list", NoParams, list_loras)
    registry.register("vaes.list", NoParams, list_vaes)
    registry.register("embeddings.list", NoParams, list_embeddings)
