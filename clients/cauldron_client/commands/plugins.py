"""``cauldronctl plugins`` (what is installed in the daemon and how it is doing) and ``cauldronctl images search``
(images found by what post-processing plugins annotated)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from cauldron_client.commands._common import call, emit_json, options, shorten, table


@click.command()
def plugins() -> None:
    """Installed plugins: name, version, status, hooks and post-processing counts."""
    result = call("plugins.list")
    if options().json:
        emit_json(result)
        return
    rows = [plugin_row(plugin) for plugin in result.get("plugins", [])]
    click.echo(table(["name", "version", "status", "processed", "hooks"], rows))
    for plugin in result.get("plugins", []):
        if plugin.get("error") and plugin.get("status") == "failed":
            click.echo(f"{plugin.get('name')}: {plugin['error']}", err=True)
        elif plugin.get("not_configured"):
            click.echo(f"{plugin.get('name')}: {plugin['not_configured']}", err=True)


def plugin_row(plugin: Mapping[str, Any]) -> tuple[Any, ...]:
    given = plugin.get("postprocess")
    counts: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    processed = None
    if "cauldron_process_image" in (plugin.get("hooks") or []):
        processed = f"{counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed, {counts.get('timeout', 0)} timeout"
    hooks = ", ".join(str(hook).removeprefix("cauldron_") for hook in plugin.get("hooks") or [])
    status = plugin.get("status")
    if status == "loaded" and plugin.get("configured") is False:
        status, processed = "loaded, not configured", None  # its counts would only say it was skipped
    return plugin.get("name"), plugin.get("version"), status, processed, hooks


@click.command()
@click.argument("words", nargs=-1)
@click.option("--tag", help="Only images tagged with this (whole tag, any case).")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--after", "after_id", type=int, help="Only images with a larger id (paging).")
def search(words: tuple[str, ...], tag: str | None, limit: int, after_id: int | None) -> None:
    """Images whose annotations (a tagger's description, tags...) contain every one of WORDS."""
    if not words and tag is None:
        raise click.UsageError("give words to search for, --tag TAG, or both")
    result = call("images.search", query=" ".join(words), tag=tag, limit=limit, after_id=after_id)
    if options().json:
        emit_json(result)
        return
    images = result.get("images", [])
    rows = [(i.get("id"), i.get("experiment_id"), i.get("seed"), shorten((i.get("params") or {}).get("prompt")),
             i.get("file")) for i in images]  # fmt: skip
    click.echo(table(["id", "experiment", "seed", "prompt", "file"], rows))
    if not images:
        click.echo("no images match", err=True)
    if result.get("has_more") and images:
        click.echo(f"more images match: add --after {images[-1].get('id')} for the next {limit}", err=True)
    for plugin in result.get("not_configured") or []:
        # Searching annotations a plugin is not producing finds nothing new: say why.
        click.echo(f"note: plugin {plugin.get('plugin')} is not annotating images: {plugin.get('not_configured')}",
                   err=True)  # fmt: skip
