"""``cauldronctl images ...``: list images and download their PNG files."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from typing import Any

import click

from cauldron_client.client import Client
from cauldron_client.commands._common import all_images, call, emit_json, fmt_time, options, run, table

FETCH_CONCURRENCY = 4


@click.group()
def images() -> None:
    """Generated images."""


@images.command("list")
@click.option("--experiment", "experiment_id", type=int, help="Only this experiment's images.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--after", "after_id", type=int, help="Only images with a larger id (paging).")
def list_(experiment_id: int | None, limit: int, after_id: int | None) -> None:
    """Images in ascending id order, with their path on the daemon's machine."""
    result = call("images.list", experiment_id=experiment_id, limit=limit, after_id=after_id)
    if options().json:
        emit_json(result)
        return
    rows = [
        (i.get("id"), i.get("experiment_id"), i.get("job_id"), i.get("seed"), _wall(i.get("wall_time_s")),
         fmt_time(i.get("created_at")), i.get("file"))
        for i in result.get("images", [])
    ]  # fmt: skip
    click.echo(table(["id", "experiment", "job", "seed", "time", "created", "file"], rows))


def _wall(seconds: Any) -> str | None:
    return f"{seconds:.2f}s" if isinstance(seconds, int | float) else None


@images.command()
@click.argument("image_ids", nargs=-1, type=int)
@click.option("--experiment", "experiment_id", type=int, help="Also fetch every image of this experiment.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder for the <id>.png files (created if missing).",
)
def fetch(image_ids: tuple[int, ...], experiment_id: int | None, out_dir: Path) -> None:
    """Download images as OUT/<id>.png over HTTP."""
    if not image_ids and experiment_id is None:
        raise click.UsageError("give image ids, --experiment ID, or both")
    out_dir.mkdir(parents=True, exist_ok=True)

    async def body(client: Client) -> list[Path]:
        ids = list(image_ids)
        if experiment_id is not None:
            ids += [int(i["id"]) for i in await all_images(client, experiment_id) if int(i["id"]) not in ids]
        limit = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def one(image_id: int) -> Path:
            async with limit:
                data = await client.fetch_image(image_id)
            return await asyncio.to_thread(write_atomically, out_dir / f"{image_id}.png", data)

        return list(await asyncio.gather(*(one(i) for i in ids)))

    written = run(body)
    if options().json:
        emit_json([str(path) for path in written])
    else:
        for path in written:
            click.echo(str(path))


def write_atomically(path: Path, data: bytes) -> Path:
    """Write a temp file in the same folder, then rename: an interrupted fetch never leaves half a PNG."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    # os.open rather than mkstemp: mkstemp forces mode 0600, a downloaded image should follow the umask.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path
