"""GET /sdapi/v1/loras, /sd-vae and /embeddings in A1111's shapes, from what the models dir holds.

A1111's shapes (its Lora extension's create_lora_json, api.get_sd_vaes, api.get_embeddings): a LoRA is
``{name, alias, path, metadata}``; a VAE ``{model_name, filename}``; embeddings are ``{"loaded": {name: {step,
sd_checkpoint, sd_checkpoint_name, shape, vectors}}, "skipped": {...}}``, where shape is the vector width read
from the file's header. A pickle file (never loaded here) is left out of the LoRA and VAE lists and listed as
skipped among the embeddings.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from cauldrond.a1111.state import state_of
from cauldrond.providers.diffusers.extras_catalogue import tensor_shapes


def _extras(request: web.Request, kind: str) -> list[Any]:
    listed: list[Any] = []
    for provider in state_of(request).services.providers.all():
        list_extras = getattr(provider, "list_extras", None)
        if callable(list_extras):
            listed.extend(list_extras(kind))
    return listed


async def get_loras(request: web.Request) -> Any:
    extras = await asyncio.to_thread(_extras, request, "lora")
    return [
        {"name": extra.name, "alias": extra.name, "path": str(extra.path), "metadata": {}}
        for extra in extras
        if extra.usable
    ]


async def get_sd_vaes(request: web.Request) -> Any:
    extras = await asyncio.to_thread(_extras, request, "vae")
    return [{"model_name": extra.name, "filename": str(extra.path)} for extra in extras if extra.usable]


async def get_embeddings(request: web.Request) -> Any:
    def listing() -> dict[str, dict[str, Any]]:
        loaded: dict[str, Any] = {}
        skipped: dict[str, Any] = {}
        for extra in _extras(request, "embedding"):
            shapes = list(tensor_shapes(extra.path).values()) if extra.usable else []
            first = shapes[0] if shapes else []
            entry = {
                "step": None,
                "sd_checkpoint": None,
                "sd_checkpoint_name": None,
                "shape": first[-1] if first else None,
                "vectors": first[0] if len(first) == 2 else (1 if first else None),
            }
            (loaded if extra.usable and first else skipped)[extra.name] = entry
        return {"loaded": loaded, "skipped": skipped}

    return await asyncio.to_thread(listing)
