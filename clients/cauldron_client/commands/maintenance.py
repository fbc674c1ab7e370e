"""``cauldronctl backup``, ``images verify`` and ``experiments retry``: keeping months of work safe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cauldron_client.commands._common import call, emit_json, exit_with, options

# Exit code of `images verify` when a file is missing or altered, so a cron job or a monitor can act on it.
DAMAGE_FOUND = 3


@click.command()
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
def backup(dest: Path) -> None:
    """Back up the database and every image into DEST while the daemon keeps working.

    DEST is a folder on the daemon's machine (new, empty, or an earlier backup, which is brought up to date);
    only the owner's local token may do this. docs/operations.md tells how to restore."""
    result = call("backups.create", dest=str(dest.expanduser().absolute()))
    if options().json:
        emit_json(result)
        return
    click.echo(
        f"backed up {result.get('images', 0)} image(s) and the database ({result.get('database_bytes', 0)} bytes) "
        f"to {result.get('destination')} in {result.get('seconds', 0):.1f}s: "
        f"{result.get('copied', 0)} copied, {result.get('unchanged', 0)} already there"
    )
    _damage(result, "source file")


@click.command()
@click.option("--quick", is_flag=True, help="Compare file sizes only (what every start does), not sha256 hashes.")
@click.option("--requeue", is_flag=True, help="Forget the damaged images and generate their jobs again.")
def verify(quick: bool, requeue: bool) -> None:
    """Check every image file against its recorded hash; list missing or altered files (exit 3 if any)."""
    result = call("images.verify", quick=quick, requeue=requeue)
    if options().json:
        emit_json(result)
    else:
        checked, depth, ok = result.get("checked", 0), result.get("depth"), result.get("ok", 0)
        click.echo(f"checked {checked} image file(s) by {depth}: {ok} ok")
        _damage(result, "file")
        if result.get("requeued"):
            click.echo(f"{len(result['requeued'])} job(s) queued to generate their image again")
    if result.get("missing_count") or result.get("altered_count"):
        exit_with(DAMAGE_FOUND)


def _damage(result: dict[str, Any], what: str) -> None:
    for kind in ("missing", "altered"):
        entries = result.get(kind) or []
        count = result.get(f"{kind}_count", len(entries))
        if not count:
            continue
        click.echo(f"{count} {what}(s) {kind}:", err=True)
        for entry in entries:
            # verify lists {image_id, job_id, path}; a backup report lists image ids.
            line = f"image {entry['image_id']}  {entry['path']}" if isinstance(entry, dict) else f"image {entry}"
            click.echo(f"  {line}", err=True)
        if len(entries) < count:
            click.echo(f"  ... and {count - len(entries)} more (--json lists the first {len(entries)})", err=True)


@click.command()
@click.argument("experiment_id", type=int)
@click.option("--failed", "only", flag_value="failed", help="Only the failed jobs.")
@click.option("--cancelled", "only", flag_value="cancelled", help="Only the cancelled jobs.")
@click.option("--job", "job_ids", type=int, multiple=True, help="Only this job; repeat for several.")
def retry(experiment_id: int, only: str | None, job_ids: tuple[int, ...]) -> None:
    """Queue an experiment's failed and cancelled jobs again, each with its own params and seed."""
    statuses = [only] if only else ["failed", "cancelled"]
    result = call("experiments.retry", experiment_id=experiment_id, statuses=statuses, job_ids=list(job_ids) or None)
    if options().json:
        emit_json(result)
        return
    click.echo(f"experiment {experiment_id}: {result.get('requeued', 0)} job(s) queued again")
