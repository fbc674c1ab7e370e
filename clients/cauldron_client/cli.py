"""``cauldronctl``: drive a cauldrond from any machine.

Expected failures (the daemon's error replies, an unreachable daemon, a missing token, a malformed experiment
file) print one line, ``error: ...``, on stderr and exit non-zero: 2 for invalid_params/not_found and bad files,
1 otherwise. Tracebacks are kept
for real bugs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from cauldron_client import __version__
from cauldron_client.commands import (
    analysis,
    experiments,
    extra_networks,
    gallery,
    generate,
    images,
    imports,
    info,
    lan,
    maintenance,
    open_app,
    plugins,
    queue,
    run_file,
    watch,
)
from cauldron_client.commands._common import Options
from cauldron_client.errors import CauldronError, RpcError
from cauldron_client.experiment_file import ExperimentFileError

USAGE_CODES = frozenset({"invalid_params", "not_found"})


# The RPC method an error names as the list of choices, and the command that shows that list.
CHOICE_COMMANDS = {
    "samplers.list": "cauldronctl samplers",
    "models.list": "cauldronctl models",
    "loras.list": "cauldronctl loras",
    "vaes.list": "cauldronctl vaes",
}


def error_line(exc: CauldronError) -> tuple[str, int]:
    """The one line printed for ``exc`` and the exit code."""
    if isinstance(exc, RpcError):
        code = 2 if exc.code in USAGE_CODES else 1
        hinted = suggestion_line(exc.data)
        if hinted is not None:
            return f"error: {hinted}", code
        message = " ".join(exc.message.split()) or "(no message)"
        return f"error: {exc.code}: {message}", code
    if isinstance(exc, ExperimentFileError):  # the user's file is wrong, like a bad option: a usage error
        return f"error: {' '.join(str(exc).split())}", 2
    return f"error: {' '.join(str(exc).split())}", 1


def suggestion_line(data: Any) -> str | None:
    """``unknown sampler 'DPM++2M' — did you mean 'DPM++ 2M'? (cauldronctl samplers lists them)`` from an error's
    ``data`` (problem, suggestions, choices); None when the daemon sent no such hints or names a list this CLI
    has no command for (its own message then says everything)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("problem"), str):
        return None
    command = CHOICE_COMMANDS.get(str(data.get("choices")))
    suggestions = [str(s) for s in data.get("suggestions") or [] if isinstance(s, str)]
    if command is None:
        return None
    line = " ".join(data["problem"].split())
    if suggestions:
        quoted = [repr(s) for s in suggestions]
        line += " — did you mean " + (" or ".join(quoted) if len(quoted) < 3 else ", ".join(quoted)) + "?"
    return f"{line} ({command} lists them)"


class CauldronGroup(click.Group):
    """A group that turns the client's expected errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CauldronError as exc:
            line, code = error_line(exc)
            click.echo(line, err=True)
            ctx.exit(code)


@click.group(cls=CauldronGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", help="Daemon URL [env CAULDRON_URL; default ws://127.0.0.1:7860/rpc].")
@click.option("--token", help="API token [env CAULDRON_TOKEN; default: the file `token` in the data dir].")
@click.option("--json", "as_json", is_flag=True, help="Print raw results as JSON.")
@click.option("--daemon", "daemon", help="A paired daemon's mDNS name (see `cauldronctl discover`).")
@click.version_option(__version__, prog_name="cauldronctl")
@click.pass_context
def cli(ctx: click.Context, url: str | None, token: str | None, as_json: bool, daemon: str | None) -> None:
    """Control a Shadow Cauldron daemon: queue sweeps, watch them run, fetch the images."""
    ctx.obj = Options(url=url, token=token, json=as_json, daemon=daemon)


cli.add_command(info.status)
cli.add_command(info.models)
cli.add_command(info.samplers)
for command in (extra_networks.loras, extra_networks.vaes, extra_networks.embeddings):
    cli.add_command(command)
cli.add_command(generate.generate)
cli.add_command(generate.sweep)
cli.add_command(experiments.convergence)
cli.add_command(experiments.cfg)
cli.add_command(run_file.run_file)
cli.add_command(experiments.experiments)
cli.add_command(analysis.grid)
cli.add_command(analysis.export)
cli.add_command(analysis.analyze)
cli.add_command(queue.queue)
cli.add_command(watch.watch)
cli.add_command(images.images)
# rerun lives with the other commands that queue work; it is reached as `images rerun`
images.images.add_command(generate.rerun)
cli.add_command(plugins.plugins)
cli.add_command(imports.import_)
# search finds images by their annotations; it is reached as `images search`
images.images.add_command(plugins.search)
cli.add_command(lan.discover)
cli.add_command(lan.pair)
cli.add_command(lan.devices)
cli.add_command(lan.service)
cli.add_command(open_app.open_app)
cli.add_command(maintenance.backup)
images.images.add_command(maintenance.verify)
# The gallery's marks and the trash act on images; the trash and the prompt history are nouns of their own.
for command in (gallery.favorite, gallery.rate, gallery.delete, gallery.restore):
    images.images.add_command(command)
cli.add_command(gallery.trash)
cli.add_command(gallery.prompts)
experiments.experiments.add_command(maintenance.retry)


def main() -> None:
    cli(prog_name="cauldronctl")
