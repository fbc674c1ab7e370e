"""The pluggy entry point: describe, tag and score each finished image with a vision LLM."""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections.abc import Mapping
from io import BytesIO
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image

from cauldron_llm_tags.clients import request_tags
from cauldron_llm_tags.settings import LlmTagsSettings, load_llm_tags_settings
from cauldrond.config import Settings
from cauldrond.plugins.hookspecs import hookimpl

PLUGIN_NAME = "llm-tags"
log = logging.getLogger(__name__)

# One semaphore per event loop and limit: asyncio primitives belong to one loop, and the limit must hold across
# all images the daemon hands us at once, not per call.
_semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def request_slots(limit: int) -> asyncio.Semaphore:
    """The semaphore shared by every call on the running loop with this concurrency limit."""
    per_loop = _semaphores.setdefault(asyncio.get_running_loop(), {})
    return per_loop.setdefault(limit, asyncio.Semaphore(limit))


def prepare_image(path: Path, max_edge: int) -> bytes:
    """The image as a PNG no larger than ``max_edge`` on its longer side, without the original's metadata chunks.

    Re-encoding always (not only when downscaling) keeps the generation parameters stored in our PNG text chunks
    out of the upload: the model should judge the picture, and a remote endpoint need not see the prompt."""
    try:
        with Image.open(path) as opened:
            opened.load()
            has_alpha = "A" in opened.getbands() or "transparency" in opened.info
            picture = opened.convert("RGBA" if has_alpha else "RGB")
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot read image file {path}: {exc}") from exc
    picture.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
    out = BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def to_annotations(description: str, tags: tuple[str, ...], quality: int, model: str) -> dict[str, str]:
    return {"description": description, "tags": ", ".join(tags), "quality": str(quality), "model": model}


async def tag_image(image: Mapping[str, Any], config: LlmTagsSettings) -> dict[str, str]:
    file = image.get("file")
    if not isinstance(file, str | os.PathLike) or not str(file):
        raise ValueError("image record has no 'file' path")
    png = await asyncio.to_thread(prepare_image, Path(file), config.max_image_edge)
    # auto_decompress off: see build_headers; the size cap must count the bytes we actually parse.
    async with request_slots(config.max_concurrency), aiohttp.ClientSession(auto_decompress=False) as session:
        result = await request_tags(session, config, png)
    log.info("llm-tags: image %s tagged by %s: %d tag(s)", image.get("id"), config.model, len(result.tags))
    return to_annotations(result.description, result.tags, result.quality, config.model)


@hookimpl
def cauldron_check_configuration(settings: Settings) -> str | None:
    """Off until a server is named: say so, so that `cauldronctl plugins` and image searches can tell the user.
    Invalid settings raise LlmTagsConfigError, which the daemon reports the same way."""
    config = load_llm_tags_settings(settings.plugin_config(PLUGIN_NAME), os.environ)
    if config.enabled:
        return None
    return (
        "tagging is not configured: set url in [plugins.llm-tags] or CAULDRON_LLM_TAGS_URL "
        "(an Ollama or OpenAI-compatible server)"
    )


@hookimpl
async def cauldron_process_image(image: Mapping[str, Any], settings: Settings) -> dict[str, str] | None:
    """Annotations ``description``, ``tags`` (comma-separated), ``quality`` (1-10) and ``model``; None when off."""
    config = load_llm_tags_settings(settings.plugin_config(PLUGIN_NAME), os.environ)
    if not config.enabled:
        return None
    return await tag_image(image, config)
