"""Reading and adding PNG text chunks without decoding or re-encoding the image.

Pixels and every other chunk are copied byte for byte, so the exported PNG keeps our own ``parameters`` and
``cauldron`` chunks; ComfyUI's web UI reads ``prompt`` and ``workflow`` from tEXt chunks when a PNG is dropped."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A text chunk holds a workflow, not an image: refuse anything that inflates past this (zip bombs). A big real
# workflow is a few hundred KB of JSON; a 60 KB zTXt once inflated to 14 MB (issue 9).
MAX_TEXT_BYTES = 4 * 1024 * 1024
# All the text one PNG may inflate to, however many chunks it spreads it over.
MAX_TOTAL_TEXT_BYTES = 8 * 1024 * 1024


def iter_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """``(type, payload)`` of each chunk up to IEND; ``ValueError`` for anything that is not a whole PNG."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file (bad signature)")
    chunks = []
    offset = len(PNG_SIGNATURE)
    while True:
        if offset + 8 > len(data):
            raise ValueError("truncated PNG file: no IEND chunk")
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        end = offset + 8 + length + 4
        if end > len(data):
            raise ValueError(f"truncated PNG file: chunk {kind!r} runs past the end")
        payload = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : end])
        if zlib.crc32(kind + payload) != crc:
            raise ValueError(f"corrupt PNG file: bad CRC in chunk {kind!r}")
        chunks.append((kind, payload))
        offset = end
        if kind == b"IEND":
            return chunks


def read_text_chunks(data: bytes, keywords: Iterable[str] | None = None) -> dict[str, str]:
    """The tEXt, zTXt and iTXt chunks as ``{keyword: text}`` (the first of a repeated keyword wins); with
    ``keywords``, only those chunks are decoded (the others are not inflated at all). ``ValueError`` when the
    text inflates past ``MAX_TEXT_BYTES`` in one chunk or ``MAX_TOTAL_TEXT_BYTES`` in all."""
    wanted = {key.encode("latin-1") for key in keywords} if keywords is not None else None
    texts: dict[str, str] = {}
    total = 0
    for kind, payload in iter_chunks(data):
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            continue
        keyword = payload.partition(b"\x00")[0]
        if (wanted is not None and keyword not in wanted) or keyword.decode("latin-1") in texts:
            continue
        parsed = _parse_text(kind, payload)
        if parsed is not None:
            total += len(parsed[1])
            if total > MAX_TOTAL_TEXT_BYTES:
                raise ValueError(f"the PNG's text chunks inflate past {MAX_TOTAL_TEXT_BYTES} bytes in all")
            texts.setdefault(*parsed)
    return texts


def _parse_text(kind: bytes, payload: bytes) -> tuple[str, str] | None:
    if kind not in (b"tEXt", b"zTXt", b"iTXt"):
        return None
    keyword_bytes, separator, rest = payload.partition(b"\x00")
    if not separator:
        raise ValueError(f"corrupt PNG {kind.decode()} chunk: no keyword terminator")
    keyword = keyword_bytes.decode("latin-1")
    if kind == b"tEXt":
        return keyword, rest.decode("latin-1")
    if kind == b"zTXt":
        return keyword, _inflate(rest[1:]).decode("latin-1")
    # iTXt: compression flag, method, language tag \0, translated keyword \0, text (UTF-8).
    if len(rest) < 2:
        raise ValueError("corrupt PNG iTXt chunk")
    compressed = rest[0] == 1
    _language, _, rest = rest[2:].partition(b"\x00")
    _translated, _, text = rest.partition(b"\x00")
    return keyword, (_inflate(text) if compressed else text).decode("utf-8", errors="replace")


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_TEXT_BYTES)
    except zlib.error as error:
        raise ValueError(f"corrupt compressed PNG text chunk: {error}") from error
    if inflater.unconsumed_tail:
        raise ValueError(f"PNG text chunk inflates past {MAX_TEXT_BYTES} bytes")
    return out


def with_text_chunks(data: bytes, texts: dict[str, str]) -> bytes:
    """A copy of the PNG ``data`` with a tEXt chunk per ``texts`` item, placed before the image data as
    encoders do; text chunks already carrying one of these keywords are dropped so the new ones are the only
    ones. Values must be Latin-1 (ComfyUI's JSON is ASCII: ``json.dumps`` escapes the rest)."""
    chunks = iter_chunks(data)
    new = [(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1")) for key, value in texts.items()]
    replaced = {key.encode("latin-1") for key in texts}
    out = [PNG_SIGNATURE]
    inserted = False
    for kind, payload in chunks:
        if kind in (b"tEXt", b"zTXt", b"iTXt") and payload.partition(b"\x00")[0] in replaced:
            continue
        if kind in (b"IDAT", b"IEND") and not inserted:
            out += [_chunk(kind_new, payload_new) for kind_new, payload_new in new]
            inserted = True
        out.append(_chunk(kind, payload))
    return b"".join(out)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
