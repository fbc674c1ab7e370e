"""``cauldronctl images favorite|rate|delete|restore``, ``trash list|empty`` and ``prompts``: the gallery's marks,
deleting with an undo, and the prompts used before."""

from __future__ import annotations

from typing import Any

import click

from cauldron_client.commands._common import call, emit_json, fmt_time, more_rows_hint, options, run, shorten, table


def _mark_line(image: dict[str, Any]) -> str:
    rating = image.get("rating")
    stars = f"rated {rating}" if rating else "not rated"
    return f"image {image.get('id')}: {'favourite' if image.get('favorite') else 'not a favourite'}, {stars}"


@click.command()
@click.argument("image_id", type=int)
@click.option("--off", is_flag=True, help="Take the favourite mark off instead.")
def favorite(image_id: int, off: bool) -> None:
    """Mark image IMAGE_ID a favourite (or, with --off, not)."""
    result = call("images.favorite", image_id=image_id, favorite=not off)
    if options().json:
        emit_json(result)
    else:
        click.echo(_mark_line(result["image"]))


@click.command()
@click.argument("image_id", type=int)
@click.argument("rating", type=click.IntRange(1, 5), required=False)
@click.option("--clear", is_flag=True, help="Remove the rating.")
def rate(image_id: int, rating: int | None, clear: bool) -> None:
    """Rate image IMAGE_ID from 1 to 5 (or remove its rating with --clear)."""
    if (rating is None) == (not clear):
        raise click.UsageError("give a RATING from 1 to 5, or --clear")
    # Sent explicitly, null included: a missing rating is refused, null clears it.
    result = run(lambda client: client.call("images.rate", image_id=image_id, rating=None if clear else rating))
    if options().json:
        emit_json(result)
    else:
        click.echo(_mark_line(result["image"]))


@click.command()
@click.argument("image_ids", nargs=-1, type=int, required=True)
def delete(image_ids: tuple[int, ...]) -> None:
    """Move images to the trash (all or none). `cauldronctl images restore` brings them back; `cauldronctl trash
    empty --yes` deletes them for good."""
    result = call("images.delete", image_ids=list(image_ids))
    if options().json:
        emit_json(result)
        return
    ids = " ".join(str(i) for i in result.get("image_ids", []))
    click.echo(f"moved to the trash: {ids} (undo: cauldronctl images restore {ids})")


@click.command()
@click.argument("image_ids", nargs=-1, type=int, required=True)
def restore(image_ids: tuple[int, ...]) -> None:
    """Bring images back from the trash (all or none)."""
    result = call("images.restore", image_ids=list(image_ids))
    if options().json:
        emit_json(result)
        return
    click.echo("restored: " + " ".join(str(i) for i in result.get("image_ids", [])))


@click.group()
def trash() -> None:
    """Deleted images, kept until the trash is emptied."""


@trash.command("list")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--after", "after_id", type=int, help="Only images with a smaller id (the next page).")
def trash_list(limit: int, after_id: int | None) -> None:
    """Images in the trash, newest first."""
    result = call("trash.list", limit=limit, after_id=after_id)
    if options().json:
        emit_json(result)
        return
    rows = [
        (i.get("id"), i.get("experiment_id"), fmt_time(i.get("deleted_at")), shorten(_prompt(i)))
        for i in result.get("images", [])
    ]
    if not rows:
        click.echo("the trash is empty", err=True)
        return
    click.echo(table(["id", "experiment", "deleted", "prompt"], rows))
    if result.get("next_after_id") is not None:
        after = str(result["next_after_id"])
        more_rows_hint("trashed images", "trash", "list", "--limit", str(limit), "--after", after)


def _prompt(image: dict[str, Any]) -> Any:
    return (image.get("caption") or {}).get("prompt")


@trash.command("empty")
@click.option("--yes", is_flag=True, help="Confirm: the images are deleted for good.")
def trash_empty(yes: bool) -> None:
    """Delete every image in the trash for good (only on the daemon's machine, with its local token)."""
    if not yes:
        raise click.UsageError("this cannot be undone: add --yes to delete every image in the trash for good")
    result = call("trash.empty", confirm=True)
    if options().json:
        emit_json(result)
    else:
        click.echo(f"deleted {result.get('deleted', 0)} image(s) for good")


@click.command()
@click.argument("query", nargs=-1)
@click.option("--limit", type=int, default=50, show_default=True)
def prompts(query: tuple[str, ...], limit: int) -> None:
    """Prompts used before, most recent first; with QUERY, only those containing every word."""
    result = call("prompts.history", query=" ".join(query), limit=limit)
    if options().json:
        emit_json(result)
        return
    rows = [
        (fmt_time(p.get("last_used_at")), p.get("uses"), p.get("prompt"), p.get("negative_prompt") or "")
        for p in result.get("prompts", [])
    ]
    if not rows:
        click.echo("no prompts", err=True)
        return
    click.echo(table(["last used", "uses", "prompt", "negative prompt"], rows))
