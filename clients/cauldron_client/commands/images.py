"""``cauldronctl images ...``: list images and download their PNG files."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from typing import Any

import click

from cauldron_client.client import Client
from cauldron_client.commands._common import (
    all_images,
    call,
    emit_json,
    fmt_time,
    more_rows_hint,
    options,
    run,
    table,
)
from cauldron_client.commands.run_file import resolved_axes
from cauldron_client.file_names import image_file_name

FETCH_CONCURRENCY = 4
MAX_JOBS = 10_000  # experiments.get's jobs_limit bound; an experiment has at most max_cells (10,000) cells


@click.group()
def images() -> None:
    """Generated images."""


@images.command("list")
@click.option("--experiment", "experiment_id", type=int, help="Only this experiment's images.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--oldest-first", is_flag=True, help="Ascending id instead of newest first.")
@click.option("--before", "before_id", type=int, help="Newest first: only images with a smaller id (next page).")
@click.option("--after", "after_id", type=int, help="With --oldest-first: only images with a larger id (next page).")
@click.option("--favorites", is_flag=True, help="Only favourites.")
@click.option("--min-rating", type=click.IntRange(1, 5), help="Only images rated at least this.")
@click.option("--model", help="Only this model's images.")
@click.option("--sampler", help='A1111 name ("DPM++ 2M Karras") or sampler name ("DPM++ 2M": any schedule).')
def list_(
    experiment_id: int | None,
    limit: int,
    oldest_first: bool,
    before_id: int | None,
    after_id: int | None,
    favorites: bool,
    min_rating: int | None,
    model: str | None,
    sampler: str | None,
) -> None:
    """Images, newest first, with their path on the daemon's machine (images in the trash are left out). When
    there are more, the last line says how to get the next page."""
    if after_id is not None and not oldest_first:
        oldest_first = True  # --after only makes sense going up
    if before_id is not None and oldest_first:
        raise click.UsageError("--before pages newest first; with --oldest-first use --after")
    order = "oldest" if oldest_first else "newest"
    filters = {"favorite": True if favorites else None, "min_rating": min_rating, "model": model, "sampler": sampler}
    result = call(
        "images.list",
        experiment_id=experiment_id,
        limit=limit,
        order=order,
        after_id=after_id,
        before_id=before_id,
        **filters,
    )
    if options().json:
        emit_json(result)
        return
    rows = [
        (i.get("id"), i.get("experiment_id"), i.get("job_id"), i.get("seed"), _wall(i.get("wall_time_s")),
         fmt_time(i.get("created_at")), i.get("file"))
        for i in result.get("images", [])
    ]  # fmt: skip
    click.echo(table(["id", "experiment", "job", "seed", "time", "created", "file"], rows))
    cursor = result.get("next")
    if result.get("has_more") and isinstance(cursor, dict) and cursor:
        (key, value), *_ = cursor.items()
        args = ["images", "list", *(["--experiment", str(experiment_id)] if experiment_id is not None else [])]
        args += ["--favorites"] if favorites else []
        args += [w for flag, v in (("--min-rating", min_rating), ("--model", model), ("--sampler", sampler))
                 if v is not None for w in (flag, str(v))]  # fmt: skip
        args += ["--limit", str(limit)] if limit != 100 else []
        args += ["--before", str(value)] if key == "before_id" else ["--oldest-first", "--after", str(value)]
        more_rows_hint("images", *args)
    elif not rows:
        click.echo("no images", err=True)


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
    help="Folder for the files (created if missing).",
)
def fetch(image_ids: tuple[int, ...], experiment_id: int | None, out_dir: Path) -> None:
    """Download images over HTTP into OUT, named by experiment, cell index and the values the experiment's axes
    gave the cell: e12-0007-steps6-DPM++_2M_Karras.png."""
    if not image_ids and experiment_id is None:
        raise click.UsageError("give image ids, --experiment ID, or both")
    out_dir.mkdir(parents=True, exist_ok=True)

    async def body(client: Client) -> list[Path]:
        records = [(await client.call("images.get", image_id=i))["image"] for i in dict.fromkeys(image_ids)]
        if experiment_id is not None:
            known = {int(r["id"]) for r in records}
            records += [r for r in await all_images(client, experiment_id) if int(r["id"]) not in known]
        names = await file_names(client, records)
        limit = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def one(record: dict[str, Any]) -> Path:
            async with limit:
                data = await client.fetch_image(int(record["id"]))
            return await asyncio.to_thread(write_atomically, out_dir / names[int(record["id"])], data)

        return list(await asyncio.gather(*(one(r) for r in records)))

    written = run(body)
    if options().json:
        emit_json([str(path) for path in written])
    else:
        for path in written:
            click.echo(str(path))


async def file_names(client: Client, records: list[dict[str, Any]]) -> dict[int, str]:
    """Image id -> file name; one experiments.get per experiment gives the cells' indexes and the axes."""
    by_experiment: dict[int, tuple[dict[int, int], list[tuple[str, list[Any]]]]] = {}
    for experiment_id in sorted({int(r["experiment_id"]) for r in records}):
        found = await client.call("experiments.get", experiment_id=experiment_id, jobs_limit=MAX_JOBS)
        indexes = {int(job["id"]): int(job["idx"]) for job in found.get("jobs", [])}
        by_experiment[experiment_id] = (indexes, resolved_axes(found["experiment"].get("spec")))
    names = {}
    for record in records:
        indexes, axes = by_experiment[int(record["experiment_id"])]
        idx = indexes.get(int(record["job_id"]))
        names[int(record["id"])] = image_file_name(int(record["experiment_id"]), idx, record.get("params") or {}, axes)
    return names


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
