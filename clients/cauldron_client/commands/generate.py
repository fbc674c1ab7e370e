"""Creating work: ``generate`` (one image cell), ``sweep`` (a cartesian experiment) and ``images rerun``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import click

from cauldron_client.commands.params import (
    AXIS_ORDER,
    Command,
    Size,
    flat,
    lora_option,
    size_fields,
    split_csv,
    sweep_spec,
)
from cauldron_client.commands.run_file import create_and_report, submit_experiment
from cauldron_client.experiment_file import ExperimentSpec
from cauldron_client.generation_fields import OPTIONS

# A1111 range syntax: "10-30", "10-30 [3]", "5-9 (+0.5)", "10-30:5". A minus sign after a comma or at the start
# ("-1", "1,-1") is a negative number, not a range.
_RANGE_SYNTAX = re.compile(r"[0-9.]\s*-\s*[-+]?[0-9.]|[\[(:]")
_AXIS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Values = list[Any] | str
_TYPES: dict[str, type] = {"str": str, "int": int, "float": float}


def generation_options(without: Iterable[str] = (), note: str = "") -> Callable[[Command], Command]:
    """One option per generation field that has one (generation_fields.OPTIONS) but those ``without``, its value
    under the field's name, in the params model's order; ``note`` ends each help text."""
    skipped = set(without)

    def decorate(command: Command) -> Command:
        for field, option, kind, help_text in reversed(OPTIONS):  # the last decorator applied is listed first
            if field not in skipped:
                text = " ".join(filter(None, [help_text, note])) or None
                command = click.option(option, field, type=_TYPES[kind], help=text)(command)
        return command

    return decorate


@click.command()
@click.argument("prompt")
@generation_options()
@lora_option()
@click.option("--size", type=Size(), help="WIDTHxHEIGHT, e.g. 512x768.")
@click.option("--priority", type=int, help="Higher runs sooner (default 0).")
@click.option("--name", help="Experiment name.")
@click.option("--watch/--no-watch", default=False, help="Show progress until done, then print the image path.")
def generate(
    prompt: str,
    size: tuple[int, int] | None,
    width: int | None,
    height: int | None,
    loras: tuple[dict[str, Any], ...],
    watch: bool,
    **fields: Any,
) -> None:
    """Queue one image of PROMPT; prints the experiment and job ids."""
    width, height = size_fields(size, width, height)
    params = {"prompt": prompt, "width": width, "height": height, "loras": list(loras) or None, **fields}
    params = {key: value for key, value in params.items() if value is not None}

    create_and_report("generate", params, watch=watch)


# -- value options: comma lists, or A1111 value strings passed through for the daemon to parse ------------------


def is_value_string(text: str) -> bool:
    """True when ``text`` uses A1111 range syntax (``10-30 [3]``, ``5-9 (+0.5)``, ``10-30:5``)."""
    return _RANGE_SYNTAX.search(text) is not None


def option_values(text: str, convert: Callable[[str], Any]) -> Values:
    """One occurrence of a number option: a comma list converted here, or a range string sent unchanged."""
    if is_value_string(text):
        return text.strip()
    return split_csv(text, convert)


def merge_values(occurrences: Iterable[Values]) -> Values:
    """Repeated occurrences of one option. Lists concatenate; once any is a value string the daemon must
    expand them, so all become one A1111 list string (``"10-30 [3], 40"``), which may mix ranges and values."""
    items = list(occurrences)
    if not any(isinstance(item, str) for item in items):
        return flat(item for item in items if isinstance(item, list))
    return ", ".join(item if isinstance(item, str) else ", ".join(str(v) for v in item) for item in items)


def parse_axis_option(text: str) -> tuple[str, str]:
    """``--axis NAME=VALUES`` -> ``(NAME, VALUES)``; VALUES stay a string for the daemon to parse."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or _AXIS_NAME.fullmatch(name) is None:
        raise ValueError(f'expected NAME=VALUES such as prompt_sr="cat,dog", got {text!r}')
    if not values.strip():
        raise ValueError(f"no values for axis {name!r}")
    return name, values.strip()


def sweep_params(
    values: Mapping[str, Values],
    axis_options: Sequence[tuple[str, str]] = (),
    fixed: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Values]]:
    """``(base, axes)`` for a sweep. List values follow ``sweep_spec`` (one value: base; several: an axis);
    value strings and ``--axis`` options are always axes. Axis order: AXIS_ORDER, then the others as given."""
    strings = {name: value for name, value in values.items() if isinstance(value, str)}
    for name, text in axis_options:
        if name in values or name in strings:
            raise ValueError(f"axis {name!r} is given twice")
        strings[name] = text
    lists = {name: value for name, value in values.items() if isinstance(value, list) and value}
    base, list_axes = sweep_spec(lists, fixed)
    clash = sorted(set(strings) & set(base))
    if clash:
        raise ValueError(f"{clash[0]!r} is both fixed and swept")
    merged: dict[str, Values] = {**list_axes, **strings}
    order = [name for name in AXIS_ORDER if name in merged] + [name for name in merged if name not in AXIS_ORDER]
    return base, {name: merged[name] for name in order}


class ValueList(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """A comma list of numbers, or an A1111 value string (passed through); ``multiple=True`` collects them."""

    def __init__(self, convert: Callable[[str], Any]) -> None:
        self.convert_item = convert
        self.name = "values"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Values:
        if isinstance(value, list):
            return value
        try:
            return option_values(str(value), self.convert_item)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class AxisOption(click.ParamType):  # type: ignore[type-arg]
    name = "NAME=VALUES"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        try:
            return parse_axis_option(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


INTS = ValueList(int)
FLOATS = ValueList(float)
_VALUES_HELP = 'comma list (10,20,30) or A1111 range ("10-40 [4]", "10-30 (+5)", "10-30:5")'
VARY_SEED_HELP = (
    "Give each cell its own random seed (A1111's 'Keep -1 for seeds'). Without it a seed of -1 (or none) is "
    "drawn once and shared by every cell, so the grid compares only what the axes vary."
)
# One value for every cell of a sweep (an axis of them is still possible: --axis negative_prompt=...).
FIXED_IN_SWEEP = frozenset({"negative_prompt"})


def sweep_dests() -> dict[str, tuple[str, str]]:
    """The sweep's repeatable option per generation field: its keyword (``samplers`` for --sampler, one value per
    occurrence; ``cfg`` for --cfg, comma lists or ranges) -> (field, value type)."""
    dests = {}
    for field, option, kind, _help in OPTIONS:
        if field not in FIXED_IN_SWEEP:
            name = option.removeprefix("--").replace("-", "_")
            dests[name + "s" if kind == "str" else name] = (field, kind)
    return dests


def sweep_options(command: Command) -> Command:
    """The generation fields' options for ``sweep``: text repeats for an axis, numbers take lists or ranges."""
    dests = {field: dest for dest, (field, _kind) in sweep_dests().items()}
    for field, option, kind, help_text in reversed(OPTIONS):
        if field in FIXED_IN_SWEEP:
            decorate = click.option(option, field, help=f"{help_text} The same for every cell.")
        elif kind == "str":
            decorate = click.option(option, dests[field], multiple=True, help=f"{help_text} Repeat for an axis.")
        else:
            values = INTS if kind == "int" else FLOATS
            decorate = click.option(
                option, dests[field], multiple=True, type=values, help=f"{help_text} Values: {_VALUES_HELP}.".lstrip()
            )
        command = decorate(command)
    return command


@click.command()
@click.option("--prompt", "prompts", multiple=True, required=True, help="Prompt; repeat for a prompt axis.")
@sweep_options
@lora_option("The same for every cell; --axis lora_weight=... sweeps the weight, --axis lora=... the LoRA.")
@click.option("--vary-seed", is_flag=True, help=VARY_SEED_HELP)
@click.option("--size", type=Size(), help="WIDTHxHEIGHT for every cell.")
@click.option(
    "--axis",
    "axis_options",
    multiple=True,
    type=AxisOption(),
    help='Any other axis as NAME=VALUES, e.g. prompt_sr="cat,dog,fox" or size="512x512,512x768"; repeatable.',
)
@click.option("--name", help="Experiment name.")
@click.option("--priority", type=int, help="Higher runs sooner (default 0).")
@click.option("--dry-run", is_flag=True, help="Show the plan (cells, axes, model loads, batches, time); queue nothing.")
@click.option("--watch/--no-watch", default=False, help="Show progress until done, then list the images.")
def sweep(
    prompts: tuple[str, ...],
    negative_prompt: str | None,
    loras: tuple[dict[str, Any], ...],
    vary_seed: bool,
    size: tuple[int, int] | None,
    axis_options: tuple[tuple[str, str], ...],
    name: str | None,
    priority: int | None,
    dry_run: bool,
    watch: bool,
    **options: tuple[Any, ...],
) -> None:
    """Queue an experiment over every combination of the given values.

    Each option given more than one value becomes an axis; text options (--prompt, --model, --sampler,
    --schedule) take one value per occurrence, number options take comma lists or A1111 ranges and may repeat.
    """
    spec = sweep_experiment(
        prompts=prompts, negative_prompt=negative_prompt, loras=loras, size=size, axis_options=axis_options,
        name=name, priority=priority, vary_seed=vary_seed, **options,
    )  # fmt: skip
    submit_experiment(spec, dry_run=dry_run, watch=watch)


def sweep_experiment(
    *,
    prompts: Sequence[str],
    negative_prompt: str | None = None,
    loras: Sequence[Mapping[str, Any]] = (),
    size: tuple[int, int] | None = None,
    axis_options: Sequence[tuple[str, str]] = (),
    name: str | None = None,
    priority: int | None = None,
    vary_seed: bool = False,
    **options: Sequence[Any],
) -> ExperimentSpec:
    """The sweep command's options as an experiment (pure: raises click.UsageError for contradictions).
    ``options`` are the generation fields' options by their keyword in ``sweep_dests()``: ``samplers=["Euler"]``,
    ``steps=["10-30 [3]"]``, ``seed=[[1], [2]]``. ``loras`` (``{"name", "weight"}``) apply to every cell."""
    dests = sweep_dests()
    unknown = sorted(set(options) - set(dests))
    if unknown:
        raise TypeError(f"no sweep option {unknown[0]!r}; the options are {', '.join(dests)}")
    values: dict[str, Values] = {"prompt": list(prompts)}
    for dest, given in options.items():
        field, kind = dests[dest]
        values[field] = list(given) if kind == "str" else merge_values(given)
    widths, heights = values.get("width", []), values.get("height", [])
    if size is not None:
        w, h = size_fields(size, widths, heights)
        values["width"], values["height"] = [w], [h]
    sized = {"size", "width", "height"} & {n for n, _ in axis_options}
    if sized and (size is not None or widths or heights):
        raise click.UsageError(f"--axis {sorted(sized)[0]}=... and --size/--width/--height: use one")
    try:
        base, axes = sweep_params(
            {k: v for k, v in values.items() if v},
            axis_options,
            {"negative_prompt": negative_prompt, "loras": [dict(lora) for lora in loras] or None},
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    params: dict[str, Any] = {"base": base}
    if axes:
        params["axes"] = axes
    return ExperimentSpec(kind="sweep", name=name, priority=priority, params=params, vary_seed=vary_seed)


@click.command()
@click.argument("image_id", type=int)
@click.option("--priority", type=int, help="Higher runs sooner (default 0).")
@click.option("--watch/--no-watch", default=False, help="Show progress until done, then print the image path.")
def rerun(image_id: int, priority: int | None, watch: bool) -> None:
    """Queue an exact repeat of image IMAGE_ID: same params, model and seed (pixel-identical on CPU)."""
    params: dict[str, Any] = {"image_id": image_id}
    if priority is not None:
        params["priority"] = priority

    create_and_report("images.rerun", params, watch=watch)
