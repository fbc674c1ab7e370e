"""``cauldronctl run FILE``: submit an experiment written as TOML, and the submission path every experiment
command shares (create or plan, then optionally watch and list the images)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from cauldron_client.client import Client
from cauldron_client.commands._common import all_images, emit_json, exit_with, options, print_image_files, run
from cauldron_client.commands.watch import EXIT_CODES_HELP, run_watching
from cauldron_client.experiment_file import ExperimentSpec, load_experiment
from cauldron_client.progress import format_duration
from cauldron_client.watching import watch as watch_progress

PLAN_VALUES_SHOWN = 12  # a 10,000-cell plan must stay one screen


@click.command("run", epilog=EXIT_CODES_HELP)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show the plan (cells, axes, model loads, batches, time); queue nothing.")
@click.option("--watch/--no-watch", default=False, help="Show progress until done, then list the images.")
def run_file(file: Path, dry_run: bool, watch: bool) -> None:
    """Submit the experiment described by the TOML FILE (see examples/*.toml).

    The file's shape is checked before anything is sent; the daemon checks the values.
    """
    submit_experiment(load_experiment(file), dry_run=dry_run, watch=watch)


async def watch_then_list(
    client: Client, experiment_id: int, watched: list[int] | None = None
) -> tuple[int, list[dict[str, Any]]]:
    on_watching = watched.extend if watched is not None else None
    progress = await watch_progress(client, [experiment_id], stream=sys.stderr, on_watching=on_watching)
    return progress.exit_code, await all_images(client, experiment_id)


def submit_experiment(spec: ExperimentSpec, *, dry_run: bool = False, watch: bool = False) -> None:
    """Create ``spec`` (or, with ``dry_run``, ask for its plan) and print the outcome."""
    if dry_run:
        plan = run(lambda client: plan_experiment(client, spec))
        if options().json:
            emit_json(plan)
        else:
            click.echo(format_plan(plan))
        return

    create_and_report(spec.method, spec.request(), watch=watch, axes=spec.axes())


def create_and_report(
    method: str, params: Mapping[str, Any], *, watch: bool, axes: Mapping[str, Any] | None = None
) -> None:
    """Call a method that creates an experiment and print what it made; with ``watch``, show progress until it
    is finished and list its image files. Exits with the watch's code (see EXIT_CODES_HELP); Ctrl-C stops
    watching, not the experiment."""

    async def body(client: Client, watched: list[int]) -> tuple[Any, int, list[dict[str, Any]]]:
        result = await client.call(method, **params)
        if not watch:
            return result, 0, []
        if not options().json:
            click.echo(created_line(result["experiment"], axes, result.get("job_ids")))
        code, images = await watch_then_list(client, int(result["experiment"]["id"]), watched)
        return result, code, images

    result, code, images = run_watching(body)
    if options().json:
        emit_json({**result, "images": images} if watch else result)
    elif watch:
        print_image_files(images)
    else:
        click.echo(created_line(result["experiment"], axes, result.get("job_ids")))
    exit_with(code)


async def plan_experiment(client: Client, spec: ExperimentSpec) -> Any:
    image = None
    if spec.kind == "cfg":  # the plan is over the image's own params, which only the daemon has
        image = (await client.call("images.get", image_id=spec.params["image_id"]))["image"]
    return await client.call("experiments.plan", **spec.plan_request(image))


# -- output --------------------------------------------------------------------------------------------------


def created_line(
    experiment: Mapping[str, Any], axes: Mapping[str, Any] | None = None, job_ids: Sequence[int] | None = None
) -> str:
    """``experiment 7: 24 cell(s) (2 sampler x 4 steps x 3 seed)``; the daemon's resolved axes when it has them."""
    line = f"experiment {experiment['id']}"
    total = (experiment.get("counts") or {}).get("total")
    if total is not None:
        line += f": {total} cell(s)"
    shape = axes_shape(experiment.get("spec"), axes or {})
    if shape:
        line += f" ({shape})"
    if job_ids and len(job_ids) <= 8:
        line += ", job id(s) " + " ".join(str(j) for j in job_ids)
    return line


def axes_shape(spec: Any, requested: Mapping[str, Any]) -> str:
    resolved = resolved_axes(spec)
    if resolved:
        return " x ".join(f"{len(values)} {name}" for name, values in resolved)
    parts = []
    for name, values in requested.items():
        parts.append(f"{len(values)} {name}" if isinstance(values, list) else f"{name} {values!r}")
    return " x ".join(parts)


def resolved_axes(spec: Any) -> list[tuple[str, list[Any]]]:
    """The axes with their values resolved by the daemon (``resolved_axes`` of an experiment's spec, or a
    plan's ``axes``), as ``(name, values)``; empty when the spec does not carry them."""
    items = spec.get("resolved_axes") if isinstance(spec, Mapping) else spec
    if isinstance(items, list):
        pairs = [
            (str(item["name"]), list(item["values"]))
            for item in items
            if isinstance(item, Mapping) and "name" in item and isinstance(item.get("values"), list)
        ]
        if pairs:
            return pairs
    axes = spec.get("axes") if isinstance(spec, Mapping) else None
    if isinstance(axes, Mapping) and all(isinstance(v, list) for v in axes.values()):
        return [(str(name), list(values)) for name, values in axes.items()]
    return []


def format_values(values: Sequence[Any], shown: int = PLAN_VALUES_SHOWN) -> str:
    text = ", ".join(_value(v) for v in values[:shown])
    if len(values) > shown:
        text += f", … ({len(values) - shown} more)"
    return text


def _value(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if (not value or "," in value or value != value.strip()) else value
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_plan(plan: Mapping[str, Any]) -> str:
    """The dry run as lines: cells, each axis with its values, model loads, batches, estimated duration."""
    lines = [f"{plan.get('cells', '?')} cell(s)"]
    axes = resolved_axes(plan.get("axes"))
    if axes:
        width = max(len(name) for name, _ in axes)
        lines.append("axes:")
        lines += [f"  {name.ljust(width)}  ({len(values)}) {format_values(values)}" for name, values in axes]
    lines.append(f"model loads: {plan.get('model_loads', '?')}")
    batches = f"batches: {plan.get('batches', '?')}"
    if plan.get("max_batch_size") is not None:
        batches += f" (at most {plan['max_batch_size']} images each)"
    lines.append(batches)
    seconds = plan.get("estimated_seconds")
    basis = plan.get("estimate_basis")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        estimate = f"{seconds:.1f} s" if seconds < 60 else format_duration(float(seconds))
    else:
        estimate = "unknown"
    lines.append(f"estimated duration: {estimate}" + (f" ({basis})" if basis else ""))
    return "\n".join(lines)
