"""PNG files written so that a crash never leaves a half-written image under its final name.

The file is encoded in memory, written to a temp name in the destination folder, fsynced, renamed over the
final name, and the folder is fsynced so the rename itself survives a power cut. Recovery deletes temp files
left by a crash (names start with ``TEMP_PREFIX``) and PNG files that no image row references.

Metadata goes in two text chunks: ``parameters`` in AUTOMATIC1111's format, so A1111, ComfyUI and civitai read
the settings back, and ``cauldron``, the exact params and provider info as JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

import cauldrond
from cauldrond.extra_networks import prompt_with_tags
from cauldrond.params import InfotextEntry, ParamField, infotext_entries

TEMP_PREFIX = ".tmp-"
PNG_SUFFIX = ".png"


@dataclass(frozen=True)
class WrittenFile:
    path: Path
    sha256: str
    size_bytes: int


def is_temp_name(name: str) -> bool:
    """True for the names ``write_png_atomic`` uses before its rename."""
    return name.startswith(TEMP_PREFIX) and name.endswith(PNG_SUFFIX)


def check_filename(filename: str) -> None:
    """Refuse anything but a plain ``*.png`` name, so a caller can never write outside ``directory``."""
    separators = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    if (
        not filename
        or any(sep in filename for sep in separators)
        or ".." in filename
        or "\x00" in filename
        or filename.startswith(TEMP_PREFIX)
        or not filename.endswith(PNG_SUFFIX)
        or filename == PNG_SUFFIX
    ):
        raise ValueError(f"refusing image filename {filename!r}: expected a plain name ending in .png")


def encode_png(image: Image.Image, text: Mapping[str, str]) -> bytes:
    info = PngInfo()
    for key, value in text.items():
        # add_text picks tEXt for Latin-1 values and iTXt (UTF-8) otherwise, so any prompt round-trips.
        info.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def write_png_atomic(image: Image.Image, directory: Path, filename: str, text: Mapping[str, str]) -> WrittenFile:
    """Write ``image`` as ``directory/filename`` with ``text`` chunks; return its path, sha256 and size.

    Blocking (encoding and fsync): call it from a worker thread, not the event loop."""
    check_filename(filename)
    data = encode_png(image, text)
    final = write_bytes_atomic(data, directory, filename)
    return WrittenFile(path=final, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def write_bytes_atomic(data: bytes, directory: Path, filename: str) -> Path:
    """Write ``data`` to a temp name in ``directory``, fsync, rename to ``filename``, fsync the folder: a reader
    (or a crash) sees the whole file or none of it. Temp names start with TEMP_PREFIX, which recovery sweeps."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / filename
    temp = directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}{PNG_SUFFIX}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(temp, flags, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, final)
    except BaseException:
        # Best effort: on a failing disk the unlink may fail too, and must not hide the error that matters
        # (ENOSPC, EIO, EROFS: the engine pauses on those). Recovery sweeps a temp file left behind.
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise
    # The rename lives in the folder's entries; the parent is synced too in case the folder itself is new.
    fsync_directory(directory)
    fsync_directory(directory.parent)
    return final


def fsync_directory(directory: Path) -> None:
    """Make renames and new entries in ``directory`` durable; a no-op where folders cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        # Some filesystems (and platforms) refuse fsync on a directory; the rename has still happened.
        pass
    finally:
        os.close(fd)


def _number(value: Any) -> str:
    # 7.0 -> "7", 7.5 -> "7.5", as A1111 writes them.
    return f"{value:g}" if isinstance(value, float) else str(value)


def _quoted(value: str) -> str:
    # A1111 quotes values that would break its "key: value, key: value" line.
    return json.dumps(value, ensure_ascii=False) if any(c in value for c in ',:\n"') else value


def _formatted(field: ParamField, value: Any) -> str:
    if field.type is float:
        return _number(float(value))
    if field.type is int:
        return str(int(value))
    return _quoted(str(value))


def _infotext_value(entry: InfotextEntry, params: Mapping[str, Any], info: Mapping[str, Any]) -> str:
    parts = []
    for field in entry.fields:
        value = params.get(field.name, field.default)
        if field.name == "model":
            value = info.get("model") or value  # the model as the provider named what it loaded
        parts.append(_formatted(field, value))
    return "x".join(parts)  # a label of several fields joins them: "Size: 512x768"


def a1111_parameters(params: Mapping[str, Any], info: Mapping[str, Any]) -> str:
    """The ``parameters`` text chunk in AUTOMATIC1111's infotext format: the prompt, the negative prompt, then
    each field's label from params.py in A1111's order (``Param.infotext``)."""
    # A1111's prompt holds the LoRA tags that experiment creation took out into the loras param.
    lines = [prompt_with_tags(str(params.get("prompt", "")), params.get("loras") or ())]
    negative = str(params.get("negative_prompt", ""))
    if negative:
        lines.append(f"Negative prompt: {negative}")
    fields: list[tuple[str, str]] = []
    for entry in infotext_entries():
        if not entry.written_at_default and entry.at_default(params):
            continue
        marker = entry.fields[0].param
        if marker.infotext_hash and info.get(marker.infotext_hash):
            # "Model hash", "VAE hash": A1111 writes the hash just before the name
            fields.append((f"{entry.label} hash", _quoted(str(info[marker.infotext_hash]))))
        if marker.infotext_info is not None:
            if info.get(marker.infotext_info):  # the provider's text ("Lora hashes"); absent: nothing to write
                fields.append((entry.label, _quoted(str(info[marker.infotext_info]))))
            continue
        fields.append((entry.label, _infotext_value(entry, params, info)))
    if info.get("ti_hashes"):
        # Embeddings are words of the prompt, not a param: the provider names those a prompt used, as A1111 does.
        fields.append(("TI hashes", _quoted(str(info["ti_hashes"]))))
    fields.append(("Version", f"cauldron-{cauldrond.__version__}"))
    lines.append(", ".join(f"{key}: {value}" for key, value in fields))
    return "\n".join(lines)


def png_text_chunks(params: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, str]:
    """Both text chunks for one image: A1111's ``parameters`` and our exact JSON under ``cauldron``."""
    exact = json.dumps(
        {"params": dict(params), "info": dict(info)},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,  # provider info may hold dtypes or paths; text is all a reader needs
    )
    return {"parameters": a1111_parameters(params, info), "cauldron": exact}


def read_png_text(path: Path) -> dict[str, str]:
    """All text chunks (tEXt, zTXt, iTXt) of a PNG file, wherever they sit in the file."""
    with Image.open(path) as image:
        if image.format != "PNG":
            raise ValueError(f"{path} is not a PNG file")
        return {str(key): str(value) for key, value in getattr(image, "text", {}).items()}
