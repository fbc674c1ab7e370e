"""Names for downloaded images that a person can tell apart: ``e12-0007-steps6-DPM++_2M_Karras.png``.

The experiment id and the cell's index make a name unique; the values the cell's axes gave it make it readable.
A cell's place on the axes follows from its index: the cells are the axes' cartesian product, first axis
outermost (as the daemon expands them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from cauldron_client.sampler_names import sampler_name_of

MAX_PART = 32  # characters per value: a prompt axis must not make a 300-character file name
# Axes shown as name+value ("steps6"); the others by their value alone ("DPM++_2M", "512x768", "a_red_fox").
_NAMED = {"steps": "steps", "cfg_scale": "cfg", "seed": "seed", "clip_skip": "clipskip", "eta": "eta",
          "width": "w", "height": "h", "denoising_strength": "denoise"}  # fmt: skip
_UNSAFE = re.compile(r"[^A-Za-z0-9.+=-]+")


def sanitize(text: str, limit: int = MAX_PART) -> str:
    """Letters, digits and ``.+=-`` only (everything else becomes ``_``), no leading dot, at most ``limit``
    characters: safe on every file system and in a shell without quoting."""
    cleaned = _UNSAFE.sub("_", text).strip("_.")
    return cleaned[:limit].rstrip("_.") or "x"


def coordinates(idx: int, axes: Sequence[tuple[str, Sequence[Any]]]) -> dict[str, Any]:
    """The value of each axis at cell ``idx`` (first axis outermost); empty when ``idx`` is outside the product,
    e.g. for an experiment of explicit cells."""
    sizes = [len(values) for _, values in axes]
    if not axes or not 0 <= idx < math.prod(sizes):
        return {}
    values: dict[str, Any] = {}
    rest = idx
    for (name, options), size in zip(reversed(axes), reversed(sizes), strict=True):
        rest, position = divmod(rest, size)
        values[name] = options[position]
    return {name: values[name] for name, _ in axes}


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def image_file_name(
    experiment_id: int, idx: int | None, params: Mapping[str, Any], axes: Sequence[tuple[str, Sequence[Any]]]
) -> str:
    """``e<experiment>-<index>-<the cell's axis values>.png``; without a known index, ``e<experiment>-image``."""
    parts = [f"e{experiment_id}", f"{idx:04d}" if idx is not None else "image"]
    at = coordinates(idx, axes) if idx is not None else {}
    sampler_shown = False
    for name, value in at.items():
        if name in ("sampler", "schedule"):  # one part, as A1111 names it: "DPM++ 2M Karras"
            if not sampler_shown:
                parts.append(sanitize(sampler_name_of(params) if params.get("sampler") else str(value)))
                sampler_shown = True
        elif name in _NAMED:
            parts.append(sanitize(_NAMED[name] + _number(value)))
        elif isinstance(value, list | tuple):  # a size as [width, height]
            parts.append(sanitize("x".join(str(v) for v in value)))
        else:
            parts.append(sanitize(_number(value)))
    return "-".join(parts) + ".png"
