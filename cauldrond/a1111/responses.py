"""Answers in A1111's shapes: txt2img's images with ``parameters`` and ``info``, progress, png-info, memory.

Images go out as base64 PNG exactly as stored: with our metadata, A1111's ``parameters`` infotext included, so
a tool that saves them (or reads them back through png-info) keeps what made them."""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

import cauldrond
from cauldrond.a1111.errors import A1111Error, field_error
from cauldrond.a1111.schemas import TXT2IMG_DEFAULTS
from cauldrond.a1111.tracker import InFlight
from cauldrond.importers.infotext import parse_infotext
from cauldrond.sampler_names import AUTOMATIC
from cauldrond.store import ImageRow

INFOTEXT_KEY = "parameters"


@dataclass(frozen=True)
class StoredImage:
    row: ImageRow
    png: bytes
    infotext: str


def read_stored(images_dir: Path, rows: Sequence[ImageRow]) -> list[StoredImage]:
    """The PNG bytes and infotext of each image. Blocking: call it on a thread."""
    found = []
    for row in rows:
        data = (images_dir / row.path).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            text = str(getattr(image, "text", {}).get(INFOTEXT_KEY, ""))
        found.append(StoredImage(row, data, text))
    return found


def txt2img_parameters(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request as A1111 echoes it: every field of its txt2img model, the client's values over the defaults."""
    return {name: body.get(name, default) for name, default in TXT2IMG_DEFAULTS.items()}


def txt2img_info(
    body: Mapping[str, Any],
    base: Mapping[str, Any],
    seeds: Sequence[int],
    images: Sequence[StoredImage],
    entry: InFlight,
    model_name: str,
) -> dict[str, Any]:
    """A1111's ``Processed.js()`` fields for what was made. ``seeds`` are all the request's seeds (A1111 lists
    them all, made or not); ``infotexts`` are those of the images returned."""
    first = images[0].row if images else None
    params = first.params if first is not None else dict(base)
    metadata = first.metadata if first is not None else {}
    count = len(seeds)
    schedule = str(params.get("schedule", AUTOMATIC))
    extra: dict[str, Any] = {} if schedule == AUTOMATIC else {"Schedule type": schedule}
    return {
        "prompt": params.get("prompt", ""),
        "all_prompts": [image.row.params.get("prompt", "") for image in images] or [params.get("prompt", "")] * count,
        "negative_prompt": params.get("negative_prompt", ""),
        "all_negative_prompts": [image.row.params.get("negative_prompt", "") for image in images]
        or [params.get("negative_prompt", "")] * count,
        "seed": seeds[0],
        "all_seeds": list(seeds),
        "subseed": -1,
        "all_subseeds": [-1] * count,
        "subseed_strength": 0,
        "width": params.get("width"),
        "height": params.get("height"),
        "sampler_name": params.get("sampler"),
        "cfg_scale": params.get("cfg_scale"),
        "steps": params.get("steps"),
        "batch_size": body.get("batch_size", 1),
        "restore_faces": False,
        "face_restoration_model": None,
        "sd_model_name": params.get("model", model_name),
        "sd_model_hash": metadata.get("model_short_hash"),
        "sd_vae_name": None,
        "sd_vae_hash": None,
        "seed_resize_from_w": -1,
        "seed_resize_from_h": -1,
        "denoising_strength": None,
        "extra_generation_params": extra,
        "index_of_first_image": 0,
        "infotexts": [image.infotext for image in images],
        "styles": [],
        "job_timestamp": entry.job_timestamp,
        "clip_skip": params.get("clip_skip", 1),
        "is_using_inpainting_conditioning": False,
        "version": f"cauldron-{cauldrond.__version__}",
        # Ours: where the request went, for the CLI and the PWA (`cauldronctl experiments show <id>`).
        "cauldron": {
            "experiment_id": entry.experiment_id,
            "image_ids": [image.row.id for image in images],
            "interrupted": entry.interrupted,
        },
    }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_image_field(text: str) -> bytes:
    """A base64 image as clients send it: bare, or a ``data:image/png;base64,`` URL."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise field_error("image", "is not base64") from exc


def png_info(data: bytes) -> dict[str, Any]:
    """A1111's png-info: the infotext, the image's other text items, and the infotext parsed into fields."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            # A PNG's text after its pixels is read by .text (Pillow's decompression-bomb check applies).
            info = {**image.info, **getattr(image, "text", {})}
            items = {str(k): v for k, v in info.items() if isinstance(v, str)}
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
        raise field_error("image", f"is not an image Pillow can read: {exc}") from exc
    text = items.pop(INFOTEXT_KEY, "")
    if not text:
        return {"info": "", "items": items, "parameters": {}}
    return {"info": text, "items": items, "parameters": parsed_parameters(text)}


def parsed_parameters(text: str) -> dict[str, Any]:
    """Like A1111's parse_generation_parameters: values as text, ``Size`` split into ``Size-1``/``Size-2``."""
    parsed = parse_infotext(text)
    fields: dict[str, Any] = {"Prompt": parsed.prompt, "Negative prompt": parsed.negative_prompt}
    for key, value in parsed.fields.items():
        width, x, height = value.partition("x")
        if x and width.isdigit() and height.isdigit():
            fields[f"{key}-1"], fields[f"{key}-2"] = width, height
        else:
            fields[key] = value
    fields.setdefault("Clip skip", "1")  # A1111 fills this default in too
    return fields


def progress_body(entry: InFlight | None, queued_ahead: int, current_image: str | None) -> dict[str, Any]:
    if entry is None:
        state = {"skipped": False, "interrupted": False, "stopping_generation": False, "job": "", "job_count": 0}
        state |= {"job_timestamp": "0", "job_no": 0, "sampling_step": 0, "sampling_steps": 0}
        return {"progress": 0.0, "eta_relative": 0.0, "state": state, "current_image": None, "textinfo": None}
    step, steps = entry.sampling()
    done = len(entry.ended_jobs)
    text = f"experiment {entry.experiment_id}: {done} of {entry.images} image(s)"
    if not entry.running and queued_ahead:
        text += f", waiting behind {queued_ahead} queued job(s)"
    return {
        "progress": round(entry.progress(), 4),
        "eta_relative": round(entry.eta_relative(), 3),
        "state": {
            "skipped": False,
            "interrupted": entry.interrupted,
            "stopping_generation": False,
            "job": f"experiment({entry.experiment_id})",
            "job_count": entry.images,
            "job_timestamp": entry.job_timestamp,
            "job_no": done,
            "sampling_step": step,
            "sampling_steps": steps,
        },
        "current_image": current_image,
        "textinfo": text,
    }


def preview_png(image: bytes) -> str:
    """A live preview (WebP from engine/previews.py) as the base64 PNG A1111's current_image is."""
    with Image.open(io.BytesIO(image)) as frame:
        out = io.BytesIO()
        frame.convert("RGB").save(out, format="PNG")
    return b64(out.getvalue())


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


__all__ = ["A1111Error", "StoredImage", "b64", "png_info", "progress_body", "read_stored", "txt2img_info"]
