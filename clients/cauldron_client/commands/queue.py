"""``cauldronctl queue ...``: list, pause, resume."""

from __future__ import annotations

from typing import Any

import click

from cauldron_client.commands._common import call, emit_json, more_rows_hint, options, shorten, table
from cauldron_client.sampler_names import sampler_name_of


@click.group()
def queue() -> None:
    """The job queue (one GPU, one queue)."""


def _job_row(job: dict[str, Any]) -> tuple[Any, ...]:
    params = job.get("params") or {}
    size = f"{params.get('width', '?')}x{params.get('height', '?')}" if params else None
    return (
        job.get("id"), job.get("experiment_id"), job.get("idx"), job.get("priority"), params.get("model"),
        sampler_name_of(params) if params.get("sampler") else None, params.get("steps"), size,
        shorten(params.get("prompt"), 40),
    )  # fmt: skip


_HEADERS = ["job", "experiment", "idx", "priority", "model", "sampler", "steps", "size", "prompt"]


@queue.command("list")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--offset", type=int, default=0, show_default=True)
def list_(limit: int, offset: int) -> None:
    """Running jobs, then queued jobs in the order they will run."""
    result = call("queue.list", limit=limit, offset=offset)
    if options().json:
        emit_json(result)
        return
    running, jobs = result.get("running", []), result.get("jobs", [])
    state = "paused" if result.get("paused") else "running"
    if result.get("paused_reason"):
        state += f" ({result['paused_reason']})"
    click.echo(f"queue {state}: {len(running)} running, {result.get('total', len(jobs))} queued")
    if running:
        click.echo("\nrunning:\n" + table(_HEADERS, [_job_row(j) for j in running]))
    if jobs:
        click.echo("\nqueued:\n" + table(_HEADERS, [_job_row(j) for j in jobs]))
    total = result.get("total")
    if isinstance(total, int) and offset + len(jobs) < total:
        shown = f"queued jobs (showing {offset + 1}-{offset + len(jobs)} of {total})" if jobs else "queued jobs"
        more_rows_hint(shown, "queue", "list", "--limit", str(limit), "--offset", str(offset + len(jobs)))


@queue.command()
def pause() -> None:
    """Stop starting new jobs (the running batch finishes)."""
    _set("queue.pause")


@queue.command()
def resume() -> None:
    """Start running jobs again."""
    _set("queue.resume")


def _set(method: str) -> None:
    result = call(method)
    if options().json:
        emit_json(result)
    else:
        click.echo("queue paused" if result.get("paused") else "queue running")
