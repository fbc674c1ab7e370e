"""Small readers shared by the A1111 API tests: decoded images and A1111 infotext fields."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from PIL import Image

FAST = {"steps": 2, "width": 64, "height": 64}


def decode_png(data: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    assert image.format == "PNG"
    return image


def infotext_fields(text: str) -> dict[str, str]:
    """The last line of A1111 infotext as key → value, split by hand (independent of cauldrond's parser)."""
    last = text.strip().split("\n")[-1]
    fields = {}
    for part in last.split(", "):
        key, _, value = part.partition(": ")
        fields[key] = value
    return fields


def info_of(reply: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(reply["info"])
    return info
