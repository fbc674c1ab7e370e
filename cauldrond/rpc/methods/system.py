"""rpc.describe, system.info, models.list, samplers.list."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

from cauldrond import __version__
from cauldrond.providers.base import ProviderError
from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.registry import MethodRegistry, NoParams

API_VERSION = 1
log = logging.getLogger(__name__)


async def describe(ctx: RpcContext, params: NoParams) -> dict[str, Any]:
    """Every RPC method with its doc and the JSON Schema of its params."""
    return {"api_version": API_VERSION, "methods": ctx.services.methods.describe()}


async def info(ctx: RpcContext, params: NoParams) -> dict[str, Any]:
    """Versions, device and memory, queue state, and what start-up recovery found."""
    services = ctx.services
    provider = services.providers.default
    hardware = await asyncio.to_thread(provider.hardware_info)
    counts = await services.store.jobs.count_by_status()
    engine, storage = services.engine, services.engine.storage.guard
    return {
        "version": __version__,
        "api_version": API_VERSION,
        "provider": provider.name,
        "providers": services.providers.names,
        "hardware": hardware,
        "queue": {
            "paused": services.queue.paused or storage.paused,
            "paused_reason": storage.reason or ("paused by request" if services.queue.paused else None),
            "queued": counts.get("queued", 0),
            "running": counts.get("running", 0),
            "done": counts.get("done", 0),
            "failed": counts.get("failed", 0),
        },
        "storage": await storage.status(),
        "engine": {"alive": engine.alive, "failure": engine.failure, "restarts": engine.restarts},
        # engine = "ray": the cluster (connected, error) and each worker (device, loaded models, batch, images/s)
        "scaleout": engine.scaleout_status(),
        "recovery": services.recovery,
        "data_dir": str(services.settings.data_dir),
        "uptime_s": round(time.monotonic() - services.started_at, 3),
    }


async def list_models(ctx: RpcContext, params: NoParams) -> dict[str, Any]:
    """Models every provider can load, with notes (the built-in tiny model's weights are random), each model's
    sha256 and short_hash (A1111's "Model hash": its first 10 hex digits; hashed once per file version, so the
    first listing after a new model arrives reads it whole), and default_model: the model used where a request
    names none (the default_model setting, or the checkpoint chosen since through the A1111 API)."""
    models = []
    for provider in ctx.services.providers.all():
        listed = await asyncio.to_thread(provider.list_models)
        hash_of = getattr(provider, "model_sha256", None)
        for model in listed:
            if callable(hash_of) and model.path is not None and model.sha256 is None:
                model = dataclasses.replace(model, sha256=await _sha256(hash_of, model.name))
            models.append(model)
    return {
        "models": [
            {**dataclasses.asdict(model), "short_hash": model.sha256[:10] if model.sha256 else None} for model in models
        ],
        # The live default: the A1111 API may have changed it (POST /sdapi/v1/options, cauldrond/a1111/options.py).
        "default_model": ctx.services.experiments.default_model,
    }


async def _sha256(hash_of: Any, name: str) -> str | None:
    try:
        value = await asyncio.to_thread(hash_of, name)
    except (OSError, ProviderError) as exc:  # a file removed or unreadable since the listing: no hash
        log.warning("cannot hash model %s: %s", name, exc)
        return None
    return value if isinstance(value, str) else None


async def list_samplers(ctx: RpcContext, params: NoParams) -> dict[str, Any]:
    """Samplers by A1111 name with the schedule types that apply to each."""
    samplers = await asyncio.to_thread(ctx.services.providers.default.list_samplers)
    return {"samplers": [dataclasses.asdict(sampler) for sampler in samplers]}


def register(registry: MethodRegistry) -> None:
    registry.register("rpc.describe", NoParams, describe)
    registry.register("system.info", NoParams, info)
    registry.register("models.list", NoParams, list_models)
    registry.register("samplers.list", NoParams, list_samplers)
