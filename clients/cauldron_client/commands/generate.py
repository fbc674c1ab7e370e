"""Creating work: ``generate`` (one image cell) and ``sweep`` (a cartesian experiment)."""

from __future__ import annotations

import sys
from typing import Any

import click

from cauldron_client.client import Client
from cauldron_client.commands._common import all_images, emit_json, exit_with, options, print_image_files, run
from cauldron_client.commands.params import CsvList, Size, cell_count, flat, size_fields, sweep_spec
from cauldron_client.progress import watch as watch_progress

_INTS = CsvList(int)
_FLOATS = CsvList(float)


async def _watch_then_list(client: Client, experiment_id: int) -> tuple[int, list[dict[str, Any]]]:
    progress = await watch_progress(client, [experiment_id], stream=sys.stderr)
    return progress.exit_code, await all_images(client, experiment_id)


@click.command()
@click.argument("prompt")
@click.option("--negative", "negative_prompt", help="Negative prompt.")
@click.option("--model", help="Model name (see `cauldronctl models`).")
@click.option("--sampler", help='A1111 sampler name, e.g. "Euler a" (see `cauldronctl samplers`).')
@click.option("--schedule", help="Automatic, Karras or Exponential.")
@click.option("--steps", type=int)
@click.option("--cfg", "cfg_scale", type=float, help="CFG scale.")
@click.option("--seed", type=int, help="-1 draws a random seed (the one used is recorded).")
@click.option("--width", type=int)
@click.option("--height", type=int)
@click.option("--size", type=Size(), help="WIDTHxHEIGHT, e.g. 512x768.")
@click.option("--clip-skip", type=int)
@click.option("--priority", type=int, help="Higher runs sooner (default 0).")
@click.option("--name", help="Experiment name.")
@click.option("--watch/--no-watch", default=False, help="Show progress until done, then print the image path.")
def generate(
    prompt: str,
    size: tuple[int, int] | None,
    width: int | None,
    height: int | None,
    watch: bool,
    **fields: Any,
) -> None:
    """Queue one image of PROMPT; prints the experiment and job ids."""
    width, height = size_fields(size, width, height)
    params = {"prompt": prompt, "width": width, "height": height, **fields}
    params = {key: value for key, value in params.items() if value is not None}

    async def body(client: Client) -> tuple[Any, int, list[dict[str, Any]]]:
        result = await client.call("generate", **params)
        if not watch:
            return result, 0, []
        if not options().json:
            _print_created(result["experiment"], result.get("job_ids"))
        code, images = await _watch_then_list(client, int(result["experiment"]["id"]))
        return result, code, images

    result, code, images = run(body)
    if options().json:
        emit_json({**result, "images": images} if watch else result)
    elif watch:
        print_image_files(images)
    else:
        _print_created(result["experiment"], result.get("job_ids"))
    exit_with(code)


def _print_created(experiment: dict[str, Any], job_ids: list[int] | None = None) -> None:
    total = (experiment.get("counts") or {}).get("total")
    line = f"experiment {experiment['id']}"
    if total is not None:
        line += f": {total} cell(s)"
    if job_ids:
        line += ", job id(s) " + " ".join(str(j) for j in job_ids)
    click.echo(line)


@click.command()
@click.option("--prompt", "prompts", multiple=True, required=True, help="Prompt; repeat for a prompt axis.")
@click.option("--negative", "negative_prompt", help="Negative prompt (the same for every cell).")
@click.option("--model", "models", multiple=True, help="Model; repeat for a model axis.")
@click.option("--sampler", "samplers", multiple=True, help="Sampler; repeat for a sampler axis.")
@click.option("--schedule", "schedules", multiple=True, help="Schedule; repeat for a schedule axis.")
@click.option("--steps", multiple=True, type=_INTS, help="Steps, comma-separated: 10,20,30.")
@click.option("--cfg", multiple=True, type=_FLOATS, help="CFG scales, comma-separated: 5,7.5.")
@click.option("--seed", multiple=True, type=_INTS, help="Seeds, comma-separated: 1,2,3.")
@click.option("--width", multiple=True, type=_INTS, help="Widths, comma-separated.")
@click.option("--height", multiple=True, type=_INTS, help="Heights, comma-separated.")
@click.option("--size", type=Size(), help="WIDTHxHEIGHT for every cell.")
@click.option("--clip-skip", multiple=True, type=_INTS, help="CLIP skip values, comma-separated.")
@click.option("--name", help="Experiment name.")
@click.option("--priority", type=int, help="Higher runs sooner (default 0).")
@click.option("--watch/--no-watch", default=False, help="Show progress until done, then list the images.")
def sweep(
    prompts: tuple[str, ...],
    negative_prompt: str | None,
    models: tuple[str, ...],
    samplers: tuple[str, ...],
    schedules: tuple[str, ...],
    steps: tuple[list[int], ...],
    cfg: tuple[list[float], ...],
    seed: tuple[list[int], ...],
    width: tuple[list[int], ...],
    height: tuple[list[int], ...],
    size: tuple[int, int] | None,
    clip_skip: tuple[list[int], ...],
    name: str | None,
    priority: int | None,
    watch: bool,
) -> None:
    """Queue an experiment over every combination of the given values.

    Each option given more than one value becomes an axis; text options (--prompt, --model, --sampler,
    --schedule) take one value per occurrence, number options take comma lists and may repeat.
    """
    widths, heights = flat(width), flat(height)
    if size is not None:
        w, h = size_fields(size, widths, heights)
        widths, heights = [w], [h]
    values = {
        "model": list(models),
        "prompt": list(prompts),
        "sampler": list(samplers),
        "schedule": list(schedules),
        "steps": flat(steps),
        "cfg_scale": flat(cfg),
        "clip_skip": flat(clip_skip),
        "width": widths,
        "height": heights,
        "seed": flat(seed),
    }
    base, axes = sweep_spec({k: v for k, v in values.items() if v}, {"negative_prompt": negative_prompt})
    request: dict[str, Any] = {"base": base}
    if axes:
        request["axes"] = axes
    if name is not None:
        request["name"] = name
    if priority is not None:
        request["priority"] = priority

    async def body(client: Client) -> tuple[Any, int, list[dict[str, Any]]]:
        result = await client.call("experiments.create", **request)
        if not watch:
            return result, 0, []
        if not options().json:
            _print_sweep(result["experiment"], axes)
        code, images = await _watch_then_list(client, int(result["experiment"]["id"]))
        return result, code, images

    result, code, images = run(body)
    if options().json:
        emit_json({**result, "images": images} if watch else result)
    elif watch:
        print_image_files(images)
    else:
        _print_sweep(result["experiment"], axes)
    exit_with(code)


def _print_sweep(experiment: dict[str, Any], axes: dict[str, list[Any]]) -> None:
    total = (experiment.get("counts") or {}).get("total", cell_count(axes))
    shape = " x ".join(f"{len(v)} {k}" for k, v in axes.items())
    click.echo(f"experiment {experiment['id']}: {total} cell(s)" + (f" ({shape})" if shape else ""))
