"""Reading a request body within a limit, before any of it is parsed.

The web app's own limit (1 MiB, the RPC frame size) fits txt2img and options; png-info carries a whole image
as base64, so it reads the stream itself under a larger bound."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from cauldrond.a1111.errors import A1111Error

JSON_LIMIT = 1024 * 1024
IMAGE_LIMIT = 32 * 1024 * 1024  # a 4096x4096 PNG of noise as base64 is about 30 MiB
CHUNK = 64 * 1024


async def read_body(request: web.Request, limit: int) -> bytes:
    too_large = A1111Error(413, f"the request body is over {limit} bytes", error="RequestEntityTooLarge")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    parts: list[bytes] = []
    size = 0
    while chunk := await request.content.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise too_large
        parts.append(chunk)
    return b"".join(parts)


async def read_json(request: web.Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object; A1111Error 422 for anything else (FastAPI answers bad JSON with 422)."""
    data = await read_body(request, limit)
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise A1111Error(422, f"the body is not JSON: {exc}", error="RequestValidationError") from exc
    if not isinstance(body, dict):
        raise A1111Error(422, "the body must be a JSON object", error="RequestValidationError")
    return body
