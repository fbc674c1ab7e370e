"""``cauldronctl experiments ...``: list, show, cancel, priority."""

from __future__ import annotations

from typing import Any

import click

from cauldron_client.commands._common import call, counts_line, emit_json, fmt_time, options, shorten, table


@click.group()
def experiments() -> None:
    """Inspect and steer experiments."""


def _progress(experiment: dict[str, Any]) -> str:
    counts = experiment.get("counts") or {}
    text = f"{counts.get('done', 0)}/{counts.get('total', 0)}"
    if counts.get("failed"):
        text += f" ({counts['failed']} failed)"
    return text


@experiments.command("list")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--offset", type=int, default=0, show_default=True)
def list_(limit: int, offset: int) -> None:
    """Experiments, newest first."""
    result = call("experiments.list", limit=limit, offset=offset)
    if options().json:
        emit_json(result)
        return
    rows = [
        (e.get("id"), shorten(e.get("name"), 30), e.get("kind"), e.get("status"), e.get("priority"),
         _progress(e), fmt_time(e.get("created_at")))
        for e in result.get("experiments", [])
    ]  # fmt: skip
    click.echo(table(["id", "name", "kind", "status", "priority", "done", "created"], rows))


@experiments.command()
@click.argument("experiment_id", type=int)
@click.option("--jobs-limit", type=int, default=1000, show_default=True, help="How many jobs to list.")
def show(experiment_id: int, jobs_limit: int) -> None:
    """One experiment: summary, counts and its jobs."""
    result = call("experiments.get", experiment_id=experiment_id, jobs_limit=jobs_limit)
    if options().json:
        emit_json(result)
        return
    e = result["experiment"]
    counts = e.get("counts") or {}
    click.echo(f"experiment {e.get('id')}  {e.get('name') or ''}".rstrip())
    click.echo(f"kind {e.get('kind')}, status {e.get('status')}, priority {e.get('priority')}")
    click.echo(f"created {fmt_time(e.get('created_at'))}, updated {fmt_time(e.get('updated_at'))}")
    click.echo(counts_line(counts))
    spec = e.get("spec")
    if isinstance(spec, dict) and isinstance(spec.get("axes"), dict):
        for field, values in spec["axes"].items():
            click.echo(f"axis {field}: " + ", ".join(str(v) for v in values))
    jobs = result.get("jobs", [])
    rows = []
    for job in jobs:
        params = job.get("params") or {}
        rows.append((
            job.get("id"), job.get("idx"), job.get("status"), job.get("attempts"), job.get("image_id"),
            params.get("sampler"), params.get("steps"), params.get("cfg_scale"), params.get("seed"),
            shorten(job.get("last_error"), 50) if job.get("last_error") else None,
        ))  # fmt: skip
    click.echo()
    headers = ["job", "idx", "status", "tries", "image", "sampler", "steps", "cfg", "seed", "error"]
    click.echo(table(headers, rows))
    total = counts.get("total")
    if isinstance(total, int) and len(jobs) < total:
        click.echo(f"(first {len(jobs)} of {total} jobs; use --jobs-limit)")


@experiments.command()
@click.argument("experiment_id", type=int)
def cancel(experiment_id: int) -> None:
    """Cancel the queued cells of an experiment and stop its running ones."""
    result = call("experiments.cancel", experiment_id=experiment_id)
    if options().json:
        emit_json(result)
        return
    click.echo(
        f"experiment {experiment_id}: {result.get('cancelled', 0)} cell(s) cancelled, "
        f"{result.get('stopping', 0)} stopping"
    )


@experiments.command()
@click.argument("experiment_id", type=int)
@click.argument("priority", type=int)
def priority(experiment_id: int, priority: int) -> None:
    """Set the priority of an experiment's queued cells (higher runs sooner)."""
    result = call("experiments.set_priority", experiment_id=experiment_id, priority=priority)
    if options().json:
        emit_json(result)
        return
    click.echo(f"experiment {experiment_id}: priority {result['experiment'].get('priority', priority)}")
