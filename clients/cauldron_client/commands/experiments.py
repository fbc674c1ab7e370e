"""``cauldronctl experiments ...`` (list, show, cancel, priority) and the experiment kinds with their own
command: ``convergence`` and ``cfg``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from cauldron_client.commands._common import (
    call,
    counts_line,
    emit_json,
    fmt_time,
    more_rows_hint,
    options,
    shorten,
    table,
)
from cauldron_client.commands.generate import FLOATS, INTS, VARY_SEED_HELP, Values, generation_options, merge_values
from cauldron_client.commands.params import Size, lora_option, size_fields
from cauldron_client.commands.run_file import format_values, resolved_axes, submit_experiment
from cauldron_client.experiment_file import ExperimentSpec
from cauldron_client.sampler_names import sampler_name_of


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
    if result.get("has_more"):
        more_rows_hint("experiments", "experiments", "list", "--limit", str(limit), "--offset", str(offset + limit))


@experiments.command()
@click.argument("experiment_id", type=int)
@click.option("--jobs-limit", type=int, default=1000, show_default=True, help="How many jobs to list.")
@click.option("--jobs-offset", type=int, default=0, show_default=True, help="Skip this many jobs (the next page).")
def show(experiment_id: int, jobs_limit: int, jobs_offset: int) -> None:
    """One experiment: summary, counts and its jobs."""
    result = call("experiments.get", experiment_id=experiment_id, jobs_limit=jobs_limit, jobs_offset=jobs_offset)
    if options().json:
        emit_json(result)
        return
    e = result["experiment"]
    counts = e.get("counts") or {}
    click.echo(f"experiment {e.get('id')}  {e.get('name') or ''}".rstrip())
    click.echo(f"kind {e.get('kind')}, status {e.get('status')}, priority {e.get('priority')}")
    click.echo(f"created {fmt_time(e.get('created_at'))}, updated {fmt_time(e.get('updated_at'))}")
    click.echo(counts_line(counts))
    axes = resolved_axes(e.get("spec"))
    for field, values in axes:
        click.echo(f"axis {field}: " + format_values(values, shown=50))
    seeds = seed_line(e.get("spec"), has_seed_axis=any(field == "seed" for field, _ in axes))
    if seeds:
        click.echo(seeds)
    jobs = result.get("jobs", [])
    rows = []
    for job in jobs:
        params = job.get("params") or {}
        rows.append((
            job.get("id"), job.get("idx"), job.get("status"), job.get("attempts"), job.get("image_id"),
            sampler_name_of(params) if params.get("sampler") else None, params.get("steps"), params.get("cfg_scale"),
            params.get("seed"),
            shorten(job.get("last_error"), 50) if job.get("last_error") else None,
        ))  # fmt: skip
    click.echo()
    headers = ["job", "idx", "status", "tries", "image", "sampler", "steps", "cfg", "seed", "error"]
    click.echo(table(headers, rows))
    total = counts.get("total")
    if isinstance(total, int) and jobs_offset + len(jobs) < total:
        more_rows_hint(
            f"jobs (showing {jobs_offset + 1}-{jobs_offset + len(jobs)} of {total})", "experiments", "show",
            str(experiment_id), "--jobs-limit", str(jobs_limit), "--jobs-offset", str(jobs_offset + len(jobs)),
        )  # fmt: skip


def seed_line(spec: Any, *, has_seed_axis: bool) -> str | None:
    """How the experiment's seeds were chosen, from the spec the daemon recorded (older specs say nothing)."""
    if not isinstance(spec, dict):
        return None
    if spec.get("vary_seed"):
        return "seeds: each cell drew its own for a seed of -1 (vary_seed)"
    seed = spec.get("seed")
    if has_seed_axis or isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        return None
    return f"seed {seed} for every cell"


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


# -- convergence and cfg -------------------------------------------------------------------------------------

# What a convergence experiment takes as its own axes (experiments.convergence's prompts, models, samplers,
# steps and seeds).
CONVERGENCE_AXES = ("prompt", "model", "sampler", "steps", "seed")


@click.command()
@click.option("--prompt", "prompts", multiple=True, required=True, help="Prompt; repeat for several.")
@click.option(
    "--model", "models", multiple=True, help="Model; repeat for several [default: the daemon's default_model]."
)
@click.option("--sampler", "samplers", multiple=True, required=True, help="Sampler; repeat for several.")
@click.option(
    "--steps", multiple=True, required=True, type=INTS, help='Step counts: 10,20,40 or a range ("10-40 [4]").'
)
@click.option(
    "--seed", "seeds", multiple=True, type=INTS, help='Seeds: 1,2 or a range ("1-4") [default: one random seed].'
)
@click.option("--vary-seed", is_flag=True, help=VARY_SEED_HELP)
# Every other generation field with an option is one value for every cell.
@generation_options(without=CONVERGENCE_AXES, note="For every cell.")
@lora_option("For every cell.")
@click.option("--size", type=Size(), help="WIDTHxHEIGHT, e.g. 512x768.")
@click.option("--name", help="Experiment name.")
@click.option("--priority", type=int, help="Higher runs sooner (default 0).")
@click.option("--dry-run", is_flag=True, help="Show the plan (cells, axes, model loads, batches, time); queue nothing.")
@click.option("--watch/--no-watch", default=False, help="Show progress until done, then list the images.")
def convergence(
    prompts: tuple[str, ...],
    models: tuple[str, ...],
    samplers: tuple[str, ...],
    steps: tuple[Values, ...],
    seeds: tuple[Values, ...],
    vary_seed: bool,
    size: tuple[int, int] | None,
    width: int | None,
    height: int | None,
    loras: tuple[dict[str, Any], ...],
    name: str | None,
    priority: int | None,
    dry_run: bool,
    watch: bool,
    **base: Any,
) -> None:
    """Queue a convergence experiment: prompts x models x samplers x seeds x steps.

    Each series varies only in steps; `cauldronctl analyze` then says at how many steps each sampler converges.
    """
    width, height = size_fields(size, width, height)
    spec = convergence_experiment(
        prompts=prompts, models=models, samplers=samplers, steps=steps, seeds=seeds,
        base={**base, "width": width, "height": height, "loras": list(loras) or None},
        name=name, priority=priority, vary_seed=vary_seed,
    )  # fmt: skip
    submit_experiment(spec, dry_run=dry_run, watch=watch)


def convergence_experiment(
    *,
    prompts: Sequence[str],
    models: Sequence[str],
    samplers: Sequence[str],
    steps: Sequence[Values],
    seeds: Sequence[Values] = (),
    base: dict[str, Any] | None = None,
    name: str | None = None,
    priority: int | None = None,
    vary_seed: bool = False,
) -> ExperimentSpec:
    """The convergence command's options as an experiment; empty options are left to the daemon's defaults."""
    params: dict[str, Any] = {
        "base": {key: value for key, value in (base or {}).items() if value is not None},
        "prompts": list(prompts),
        "models": list(models),
        "samplers": list(samplers),
        "steps": merge_values(steps),
        "seeds": merge_values(seeds),
    }
    params = {key: value for key, value in params.items() if value or key == "base"}
    return ExperimentSpec(kind="convergence", name=name, priority=priority, params=params, vary_seed=vary_seed)


@click.command()
@click.argument("image_id", type=int)
@click.option("--cfg", multiple=True, required=True, type=FLOATS, help='CFG scales: 3,7,11 or a range ("3-12 [4]").')
@click.option("--vary-seed", is_flag=True, help="Give each cell a random seed instead of the image's.")
@click.option("--name", help="Experiment name.")
@click.option("--priority", type=int, help="Higher runs sooner (default 0).")
@click.option("--dry-run", is_flag=True, help="Show the plan (cells, axes, model loads, batches, time); queue nothing.")
@click.option("--watch/--no-watch", default=False, help="Show progress until done, then list the images.")
def cfg(
    image_id: int,
    cfg: tuple[Values, ...],
    vary_seed: bool,
    name: str | None,
    priority: int | None,
    dry_run: bool,
    watch: bool,
) -> None:
    """Queue a CFG experiment from image IMAGE_ID: its exact params and seed, over the given CFG scales."""
    spec = cfg_experiment(image_id, cfg, name=name, priority=priority, vary_seed=vary_seed)
    submit_experiment(spec, dry_run=dry_run, watch=watch)


def cfg_experiment(
    image_id: int,
    cfg: Sequence[Values],
    *,
    name: str | None = None,
    priority: int | None = None,
    vary_seed: bool = False,
) -> ExperimentSpec:
    params = {"image_id": image_id, "cfg": merge_values(cfg)}
    return ExperimentSpec(kind="cfg", name=name, priority=priority, params=params, vary_seed=vary_seed)
