"""``cauldronctl watch``: live progress of experiments until they finish, and the Ctrl-C handling every
``--watch`` shares: stop watching, never the experiment, and say how to come back."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import click

from cauldron_client.client import Client
from cauldron_client.commands._common import command_prefix, exit_with, options, run
from cauldron_client.events import Event
from cauldron_client.progress import EXIT_INTERRUPTED, Progress
from cauldron_client.watching import watch as watch_progress

T = TypeVar("T")

EXIT_CODES_HELP = (
    "Exit codes: 0 every cell done; 1 some cell failed; 3 an experiment was cancelled; "
    "130 interrupted (Ctrl-C stops watching, the experiments keep running)."
)


def interrupted_message(experiment_ids: Sequence[int]) -> str:
    if not experiment_ids:
        return "interrupted; nothing was being watched yet (`cauldronctl experiments list` shows what was created)"
    prefix = command_prefix()
    ids = " ".join(str(i) for i in experiment_ids)
    subject = f"experiment {ids} keeps" if len(experiment_ids) == 1 else f"experiments {ids} keep"
    cancel = f"{prefix} experiments cancel {experiment_ids[0]}"
    if len(experiment_ids) > 1:
        cancel = f"{prefix} experiments cancel ID  (one of {ids})"
    return "\n".join([
        f"stopped watching; {subject} running.",
        f"  watch again:  {prefix} watch {ids}",
        f"  cancel:       {cancel}",
    ])  # fmt: skip


def run_watching(body: Callable[[Client, list[int]], Awaitable[T]]) -> T:
    """Run ``body(client, watched)``; ``body`` appends the ids it watches to ``watched``. Ctrl-C ends the
    command with a hint and exit code 130 instead of click's "Aborted!"."""
    watched: list[int] = []
    # asyncio.run turns Ctrl-C into a clean cancel only when SIGINT has Python's default handler; a parent that
    # started us with SIGINT ignored (a background job of a script) would otherwise make Ctrl-C do nothing here.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run(lambda client: body(client, watched))
    except KeyboardInterrupt:
        click.echo("\n" + interrupted_message(watched), err=True)
        click.get_current_context().exit(EXIT_INTERRUPTED)


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("experiment_ids", nargs=-1, type=int)
@click.option("--interval", type=float, default=10.0, show_default=True, help="Seconds between lines off a TTY.")
def watch(experiment_ids: tuple[int, ...], interval: float) -> None:
    """Show progress of EXPERIMENT_IDS (default: every unfinished experiment) until all are finished.

    An experiment that has already finished is reported in one line (done, failed or cancelled). With --json,
    stdout gets every event as one JSON line.
    """
    as_json = options().json

    def print_event(event: Event) -> None:
        click.echo(json.dumps(event, default=repr))

    async def body(client: Client, watched: list[int]) -> Progress:
        return await watch_progress(
            client,
            list(experiment_ids) or None,
            stream=sys.stderr,
            line_interval_s=interval,
            on_event=print_event if as_json else None,
            on_watching=watched.extend,
        )

    progress = run_watching(body)
    if not progress.experiments:
        click.echo("nothing to watch: no unfinished experiments", err=True)
    exit_with(progress.exit_code)
