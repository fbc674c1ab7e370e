"""The ``/sdapi/v1/`` routes. Each handler answers in A1111's shapes; failures in its error shape (errors.py).
Credentials and whether the API is on for the listener are checked before any of these runs (auth.py, called
by the web app's guard)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from cauldrond.a1111 import PREFIX
from cauldrond.a1111.auth import A1111_CREDENTIAL
from cauldrond.a1111.catalogue import samplers_to_a1111, schedulers_to_a1111
from cauldrond.a1111.errors import A1111Error, field_error, not_found
from cauldrond.a1111.extra_networks import get_embeddings, get_loras, get_sd_vaes
from cauldrond.a1111.generate import txt2img
from cauldrond.a1111.options import FIXED_OPTIONS, StoredOptions, save_options
from cauldrond.a1111.responses import decode_image_field, png_info, preview_png, progress_body
from cauldrond.a1111.schemas import PngInfoRequest
from cauldrond.a1111.state import A1111_STATE, A1111State, state_of
from cauldrond.a1111.system import cmd_flags, memory
from cauldrond.a1111.translate import OVERRIDE_CLIP_SKIP, OVERRIDE_MODEL, XYZ_SCRIPT
from cauldrond.a1111.upload import IMAGE_LIMIT, JSON_LIMIT, read_json
from cauldrond.rpc.redaction import PathRedactor
from cauldrond.services import Services

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[Any]]
# How long a progress poll keeps live previews coming: pollers ask about once a second.
PREVIEW_INTEREST_S = 10.0


def answers(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """JSON out, A1111Error as A1111's error body, anything unexpected as its 500; the daemon's paths redacted
    for a paired device."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            result = await handler(request)
        except A1111Error as exc:
            return _redacted(request, exc.response())
        except Exception as exc:
            log.exception("A1111 API: %s %s failed", request.method, request.path)
            return A1111Error(500, "internal error (see the daemon log)", error=type(exc).__name__).response()
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(_redact(request, result))

    return wrapped


# Big base64 payloads hold no paths; they are not searched.
IMAGE_KEYS = frozenset({"images", "current_image"})


def _redactor(request: web.Request) -> PathRedactor | None:
    credential = request.get(A1111_CREDENTIAL)
    if credential is not None and credential.is_local:
        return None
    settings = state_of(request).services.settings
    return PathRedactor({str(settings.data_dir): "<data_dir>", str(settings.resolved_models_dir): "<models_dir>"})


def _redact(request: web.Request, result: Any) -> Any:
    redactor = _redactor(request)
    if redactor is None:
        return result
    if isinstance(result, dict):
        return {key: value if key in IMAGE_KEYS else redactor(value) for key, value in result.items()}
    return redactor(result)


def _redacted(request: web.Request, response: web.Response) -> web.Response:
    redactor = _redactor(request)
    if redactor is None or response.text is None:
        return response
    response.text = redactor.text(response.text)
    return response


async def get_sd_models(request: web.Request) -> Any:
    return [checkpoint.to_a1111() for checkpoint in await state_of(request).checkpoints()]


async def refresh_checkpoints(request: web.Request) -> Any:
    await state_of(request).checkpoints()  # the models dir is read on every listing; this hashes new files now
    return None


async def get_samplers(request: web.Request) -> Any:
    provider = state_of(request).services.providers.default
    return samplers_to_a1111(await asyncio.to_thread(provider.list_samplers))


async def get_schedulers(request: web.Request) -> Any:
    return schedulers_to_a1111()


async def get_options(request: web.Request) -> Any:
    state = state_of(request)
    model = state.services.experiments.default_model
    checkpoint = await state.checkpoint(model)
    return {
        OVERRIDE_MODEL: checkpoint.title if checkpoint is not None else model,
        "sd_checkpoint_hash": checkpoint.sha256 if checkpoint is not None else None,
        OVERRIDE_CLIP_SKIP: state.options.clip_skip,
        **FIXED_OPTIONS,
    }


async def set_options(request: web.Request) -> Any:
    """Validate every key first, then persist, then apply: a refused request changes nothing."""
    state = state_of(request)
    body = await read_json(request, JSON_LIMIT)
    model: str | None = None
    clip_skip = state.options.clip_skip
    for key, value in body.items():
        if key == OVERRIDE_MODEL:
            checkpoint = await state.checkpoint(str(value)) if isinstance(value, str) else None
            if checkpoint is None:
                raise field_error(key, f"no checkpoint {value!r:.200}; see GET {PREFIX}sd-models")
            model = checkpoint.name
        elif key == OVERRIDE_CLIP_SKIP:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 12:
                raise field_error(key, f"must be a whole number from 1 to 12, got {value!r:.80}")
            clip_skip = max(1, value)  # A1111 treats 0 as 1
        elif key in FIXED_OPTIONS and FIXED_OPTIONS[key] != value:
            raise field_error(key, f"cannot be changed here (it is {FIXED_OPTIONS[key]!r})")
        # Anything else is not an option of ours: ignored, as A1111 ignores options it does not know.
    if model is None and clip_skip == state.options.clip_skip:
        return None
    changed = StoredOptions(model or state.options.default_model, clip_skip)
    await asyncio.to_thread(save_options, state.services.settings.data_dir, changed)
    state.options = changed
    if model is not None:
        state.services.experiments.default_model = model
    return None


async def get_progress(request: web.Request) -> Any:
    state = state_of(request)
    services = state.services
    entry = state.tracker.current()
    skip_image = request.query.get("skip_current_image", "false").lower() in ("1", "true", "yes")
    image: str | None = None
    ahead = 0
    if entry is not None:
        if not skip_image:
            image = _current_image(services, entry.running)
        if not entry.running:
            ahead = _queued_ahead(services, entry.experiment_id)
    return progress_body(entry, ahead, image)


def _current_image(services: Services, running: set[int]) -> str | None:
    services.previews.want_for(PREVIEW_INTEREST_S)
    frames = [frame for job in running if (frame := services.previews.latest(job)) is not None]
    if not frames:
        return None
    return preview_png(max(frames, key=lambda frame: frame.ts).image)


def _queued_ahead(services: Services, experiment_id: int) -> int:
    ahead = len(services.engine.running_jobs)
    for _, job in services.queue.ordered():
        if job.experiment_id == experiment_id:
            break
        ahead += 1
    return ahead


async def interrupt(request: web.Request) -> Any:
    """Cancel the current A1111 request (tracker.py says which): its queued images are dropped, the running batch
    stops at its next step, and its txt2img answers with the images already made."""
    state = state_of(request)
    entry = state.tracker.current()
    if entry is None:
        return None
    row = await state.services.store.experiments.get(entry.experiment_id)
    if row is not None and (row.counts["queued"] or row.counts["running"]):
        entry.interrupted = True
        await state.services.experiments.cancel(entry.experiment_id)
    return None


async def skip(request: web.Request) -> Any:
    # A1111's skip drops the current batch and goes on with the next; the queue cannot stop one batch of an
    # experiment without cancelling the experiment, so skip is accepted and does nothing (docs/a1111-api.md).
    return None


async def post_png_info(request: web.Request) -> Any:
    body = await read_json(request, IMAGE_LIMIT)
    try:
        fields = PngInfoRequest.model_validate(body)
    except ValidationError as exc:
        raise field_error("image", "must be a string: a PNG as base64") from exc
    if not fields.image:
        raise field_error("image", "is required: a PNG as base64")
    data = decode_image_field(fields.image)
    return await asyncio.to_thread(png_info, data)


async def empty_list(request: web.Request) -> Any:
    # Upscalers, styles: cauldrond has none of these; an empty list is the truthful answer.
    return []


async def get_scripts(request: web.Request) -> Any:
    return {"txt2img": [XYZ_SCRIPT], "img2img": []}


async def get_memory(request: web.Request) -> Any:
    return await asyncio.to_thread(memory)


async def get_cmd_flags(request: web.Request) -> Any:
    return cmd_flags(state_of(request).services.settings)


async def unknown_route(request: web.Request) -> Any:
    raise not_found(f"{request.path} is not part of the A1111 API here; see docs/a1111-api.md")


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "txt2img", txt2img),
    ("GET", "sd-models", get_sd_models),
    ("POST", "refresh-checkpoints", refresh_checkpoints),
    ("GET", "samplers", get_samplers),
    ("GET", "schedulers", get_schedulers),
    ("GET", "options", get_options),
    ("POST", "options", set_options),
    ("GET", "progress", get_progress),
    ("POST", "interrupt", interrupt),
    ("POST", "skip", skip),
    ("POST", "png-info", post_png_info),
    ("GET", "loras", get_loras),
    ("GET", "embeddings", get_embeddings),
    ("GET", "upscalers", empty_list),
    ("GET", "latent-upscale-modes", empty_list),
    ("GET", "sd-vae", get_sd_vaes),
    ("GET", "prompt-styles", empty_list),
    ("GET", "scripts", get_scripts),
    ("GET", "memory", get_memory),
    ("GET", "cmd-flags", get_cmd_flags),
]


def add_a1111_routes(app: web.Application, services: Services) -> None:
    """Mount the API on ``app`` (every listener's app); the guard decides per request whether it answers."""
    app[A1111_STATE] = A1111State.start(services)
    for method, name, handler in ROUTES:
        app.router.add_route(method, PREFIX + name, answers(handler))
    # Anything else under the prefix: A1111's 404, after the credentials check like every route.
    for method in ("GET", "POST"):
        app.router.add_route(method, PREFIX + "{tail:.*}", answers(unknown_route))
