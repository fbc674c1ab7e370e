"""``cauldronctl watch``: live progress of experiments until they finish."""

from __future__ import annotations

import json
import sys

import click

from cauldron_client.client import Client
from cauldron_client.commands._common import exit_with, options, run
from cauldron_client.events import Event
from cauldron_client.progress import Progress
from cauldron_client.progress import watch as watch_progress


@click.command()
@click.argument("experiment_ids", nargs=-1, type=int)
@click.option("--interval", type=float, default=10.0, show_default=True, help="Seconds between lines off a TTY.")
def watch(experiment_ids: tuple[int, ...], interval: float) -> None:
    """Show progress of EXPERIMENT_IDS (default: every unfinished experiment) until all are finished.

    Exits 0 when all are done, 1 if any cell failed. With --json, stdout gets every event as one JSON line.
    """
    as_json = options().json

    def print_event(event: Event) -> None:
        click.echo(json.dumps(event, default=repr))

    async def body(client: Client) -> Progress:
        return await watch_progress(
            client,
            list(experiment_ids) or None,
            stream=sys.stderr,
            line_interval_s=interval,
            on_event=print_event if as_json else None,
        )

    progress = run(body)
    if not progress.experiments:
        click.echo("nothing to watch: no unfinished experiments", err=True)
    exit_with(progress.exit_code)
