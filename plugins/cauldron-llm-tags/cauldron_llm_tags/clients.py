"""Talking to the vision model: one request shape per backend, bounded reads, retries with backoff."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from cauldron_llm_tags.reply import PROMPT, ReplyError, TagResult, clean_text, message_content, parse_tags_reply
from cauldron_llm_tags.settings import LlmTagsSettings

log = logging.getLogger(__name__)

# Enough for the JSON we ask for; it also caps what a rambling model costs per image.
MAX_ANSWER_TOKENS = 400
_CHUNK = 64 * 1024
_ERROR_EXCERPT_BYTES = 4096
_ERROR_EXCERPT_CHARS = 200
_SECONDS = re.compile(r"[0-9]{1,6}")


class LlmRequestError(RuntimeError):
    """The server could not be reached, timed out, or answered with an HTTP error (after any retries)."""


class _Retryable(Exception):
    """One attempt failed in a way another attempt may not: a transport error, a timeout, 429 or 5xx."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def endpoint(settings: LlmTagsSettings) -> str:
    if settings.backend == "ollama":
        return f"{settings.url}/api/chat"
    # Accept both the server root and the ".../v1" base URL that OpenAI-compatible servers usually document.
    base = settings.url if settings.url.endswith("/v1") else f"{settings.url}/v1"
    return f"{base}/chat/completions"


def build_payload(settings: LlmTagsSettings, png: bytes) -> dict[str, Any]:
    encoded = base64.b64encode(png).decode("ascii")
    if settings.backend == "ollama":
        return {
            "model": settings.model,
            "messages": [{"role": "user", "content": PROMPT, "images": [encoded]}],
            "stream": False,
            "format": "json",
            "options": {"temperature": 0, "num_predict": MAX_ANSWER_TOKENS},
        }
    return {
        "model": settings.model,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": PROMPT},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}},
                ],
            }
        ],
        "response_format": {"type": "json_object"},
        "temperature": 0,
        "max_tokens": MAX_ANSWER_TOKENS,
    }


def build_headers(settings: LlmTagsSettings) -> dict[str, str]:
    # identity: a compressed body could expand far beyond the size cap before we count it.
    headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
    if settings.api_key:
        headers["Authorization"] = f"Bearer {settings.api_key}"
    return headers


def backoff_delay(settings: LlmTagsSettings, retry: int, retry_after: float | None = None) -> float:
    """Delay before retry number ``retry`` (0-based): exponential, capped, with jitter in [delay/2, delay]."""
    delay = min(settings.max_backoff, settings.backoff * 2.0**retry)
    if retry_after is not None:
        # Honour the server's hint, but never wait longer than the configured cap.
        delay = min(settings.max_backoff, max(delay, retry_after))
    # Jitter spreads retries of many images over time; it needs no cryptographic randomness.
    return delay / 2 + random.uniform(0, delay / 2)  # nosec B311


async def request_tags(
    session: aiohttp.ClientSession,
    settings: LlmTagsSettings,
    png: bytes,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> TagResult:
    """Ask the model about one PNG. Raises ``LlmRequestError`` or ``ReplyError``; only the former is retried."""
    url = endpoint(settings)
    payload = build_payload(settings, png)
    headers = build_headers(settings)
    attempts = settings.retries + 1
    for attempt in range(attempts):
        try:
            body = await _post(session, settings, url, payload, headers)
            break
        except _Retryable as exc:
            if attempt + 1 >= attempts:
                raise LlmRequestError(f"{exc} (gave up after {attempts} attempt(s))") from None
            delay = backoff_delay(settings, attempt, exc.retry_after)
            log.warning("llm-tags: %s; retrying in %.2f s (attempt %d of %d)", exc, delay, attempt + 2, attempts)
            await sleep(delay)
    else:  # pragma: no cover - the loop either breaks or raises
        raise AssertionError("unreachable")
    return parse_tags_reply(message_content(body, settings.backend))


async def _post(
    session: aiohttp.ClientSession,
    settings: LlmTagsSettings,
    url: str,
    payload: dict[str, Any],
    headers: dict[str, str],
) -> bytes:
    timeout = aiohttp.ClientTimeout(total=settings.timeout)
    try:
        # No redirects: following one could carry the API key to another host.
        async with session.post(url, json=payload, headers=headers, timeout=timeout, allow_redirects=False) as resp:
            if resp.status == 429 or resp.status >= 500:
                raise _Retryable(await _status_text(resp), _retry_after(resp))
            if resp.status != 200:
                raise LlmRequestError(await _status_text(resp))
            return await read_bounded(resp, settings.max_reply_bytes)
    except TimeoutError:
        raise _Retryable(f"no complete reply from {url} within {settings.timeout:g} s") from None
    except aiohttp.ClientConnectorError as exc:
        raise _Retryable(f"cannot reach {url}: {type(exc).__name__}") from None
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
        raise _Retryable(f"connection to {url} broke: {type(exc).__name__}") from None
    except aiohttp.ClientError as exc:
        raise LlmRequestError(f"request to {url} failed: {type(exc).__name__}") from None


async def read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, read chunk by chunk; abandons the response as soon as it passes ``limit`` bytes."""
    if resp.content_length is not None and resp.content_length > limit:
        raise ReplyError(f"server reply is {resp.content_length} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in resp.content.iter_chunked(_CHUNK):
        body.extend(chunk)
        if len(body) > limit:
            raise ReplyError(f"server reply exceeds the limit of {limit} bytes")
    return bytes(body)


async def _status_text(resp: aiohttp.ClientResponse) -> str:
    """``HTTP <status> from <url>``, plus the server's own error message when it sends one as JSON.

    Only an ``error`` string (Ollama) or ``error.message`` (OpenAI) is kept, cleaned and cut short: it says what
    is wrong ("model not found", "invalid key") without letting an arbitrary body into the failure record."""
    text = f"HTTP {resp.status} from {resp.url}"
    try:
        excerpt = await resp.content.read(_ERROR_EXCERPT_BYTES)
        data = json.loads(excerpt)
    except (ValueError, RecursionError, aiohttp.ClientError, TimeoutError):
        return text
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    if isinstance(error, str) and (cleaned := clean_text(error)[:_ERROR_EXCERPT_CHARS]):
        text += f": {cleaned}"
    return text


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    # Only the delay-seconds form; an HTTP date is rare from these servers and the backoff covers it.
    value = resp.headers.get("Retry-After", "").strip()
    return float(value) if _SECONDS.fullmatch(value) else None
