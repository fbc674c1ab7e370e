"""``cauldronctl import FILE``: turn another tool's file (an A1111 PNG or pasted infotext, a ComfyUI workflow, a PNG
that carries one...) into generation params with one of the daemon's importer plugins, and optionally queue them."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import click

from cauldron_client.commands._common import call, emit_json, options, table
from cauldron_client.errors import CauldronError
from cauldron_client.sampler_names import sampler_name_of

# One RPC string or binary value may hold at most 64 KiB (docs/rpc.md, limits).
MAX_IMPORT_BYTES = 64 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_text_only(data: bytes) -> bytes | None:
    """A 1×1 PNG carrying ``data``'s text chunks (where workflows and parameters live), or None if ``data`` is not
    a PNG. Importers read the metadata, not the pixels, and a full-size PNG would not fit in one RPC value."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    texts = []
    offset = len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind in TEXT_CHUNKS:
            texts.append(_chunk(kind, data[offset + 8 : offset + 8 + length]))
        if kind == b"IEND":
            break
        offset += 12 + length
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1×1, 8-bit RGB
    pixels = zlib.compress(b"\x00\x00\x00\x00")  # filter byte + one black pixel
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + b"".join(texts) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def import_content(path: Path) -> bytes:
    """The file's bytes (``-``: standard input, e.g. infotext pasted from A1111), PNGs slimmed to their text."""
    if str(path) == "-":
        data = sys.stdin.buffer.read(MAX_IMPORT_BYTES + 1)
        if len(data) > MAX_IMPORT_BYTES:
            raise CauldronError(f"standard input holds over {MAX_IMPORT_BYTES} bytes; an import may be at most that")
        return data
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CauldronError(f"cannot read {path}: {(exc.strerror or str(exc)).lower()}") from None
    if len(data) > MAX_IMPORT_BYTES:
        slim = png_text_only(data)
        if slim is not None:
            data = slim
    if len(data) > MAX_IMPORT_BYTES:
        raise CauldronError(f"{path} is {len(data)} bytes; an import file may be at most {MAX_IMPORT_BYTES} bytes")
    return data


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--format", "fmt", help="Importer to use [default: try each one the daemon has].")
@click.option("--queue", "queue_it", is_flag=True, help="Queue the params as one experiment.")
@click.option("--priority", type=int, default=0, show_default=True, help="Priority of the queued experiment.")
@click.option("--name", help="Name of the queued experiment [default: import of FILE].")
def import_(file: Path, fmt: str | None, queue_it: bool, priority: int, name: str | None) -> None:
    """Turn FILE from another tool into generation params; with --queue, queue them.

    FILE may be an A1111 PNG (its 'parameters' chunk; cauldron's own PNGs carry one too), a ComfyUI workflow or
    PNG, or - for standard input, e.g. infotext copied from A1111: cauldronctl import --format a1111 -
    Settings cauldron cannot reproduce (hires fix, LoRA hashes, ADetailer...) are listed, never dropped silently."""
    content = import_content(file)
    filename = "stdin.txt" if str(file) == "-" else file.name
    result = call(
        "imports.run", content=content, filename=filename, format=fmt, queue=queue_it, priority=priority, name=name
    )
    if options().json:
        emit_json(result)
        return
    params = result.get("params", [])
    rows = [
        (n, p.get("model"), sampler_name_of(p) if p.get("sampler") else None, p.get("steps"), p.get("cfg_scale"),
         p.get("seed"),
         f"{p.get('width')}x{p.get('height')}", p.get("prompt"))
        for n, p in enumerate(params, start=1)
    ]  # fmt: skip
    click.echo(table(["#", "model", "sampler", "steps", "cfg", "seed", "size", "prompt"], rows))
    for item in result.get("ignored") or []:
        value = f" = {item.get('value')}" if item.get("value") else ""
        click.echo(f"ignored: {item.get('field')}{value} ({item.get('reason')})", err=True)
    for note in result.get("notes") or []:
        click.echo(f"note: {note}", err=True)
    for problem in result.get("problems") or []:
        click.echo(f"would not queue: {problem}", err=True)
    experiment = result.get("experiment")
    if isinstance(experiment, dict):
        click.echo(
            f"queued experiment {experiment.get('id')} ({len(params)} image(s), {result.get('format')})", err=True
        )
    else:
        click.echo(f"{len(params)} image(s) read by {result.get('format')}; --queue queues them", err=True)
