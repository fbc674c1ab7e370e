"""Turning command-line options into generation params and sweep specs. The conversions are pure functions so
they can be tested without a daemon; the click types only wrap them."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import click

Command = TypeVar("Command", bound=Callable[..., Any])

# Axis order in the spec: the first axis is outermost, so the most expensive switch (the model) goes first and
# the cheapest (the seed) last; the daemon's planner reorders for speed anyway, this only fixes cell order.
AXIS_ORDER = (
    "model",
    "vae",
    "prompt",
    "sampler",
    "schedule",
    "steps",
    "cfg_scale",
    "clip_skip",
    "width",
    "height",
    "seed",
)

_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")
DEFAULT_LORA_WEIGHT = 1.0  # A1111's <lora:name> without a weight (its extra_networks_default_multiplier)


def parse_size(text: str) -> tuple[int, int]:
    """``"512x768"`` -> ``(512, 768)`` (width, height)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"expected WIDTHxHEIGHT such as 512x768, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def parse_lora(text: str) -> dict[str, Any]:
    """``"detail:0.6"`` -> ``{"name": "detail", "weight": 0.6}``, A1111's ``<lora:detail:0.6>``; ``"detail"``
    has weight 1. The daemon checks the name (a file in its loras folder) and the weight's range."""
    name, sep, weight = (part.strip() for part in text.partition(":"))
    if not name or (sep and not weight):
        raise ValueError(f"expected NAME or NAME:WEIGHT such as detail:0.6, got {text!r}")
    if not sep:
        return {"name": name, "weight": DEFAULT_LORA_WEIGHT}
    try:
        value = float(weight)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"the weight in {text!r} is not a number: {weight!r}")
    return {"name": name, "weight": value}


def split_csv(text: str, convert: Callable[[str], Any]) -> list[Any]:
    """``"10, 20,30"`` -> ``[10, 20, 30]``; empty items are an error, not silently skipped."""
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise ValueError(f"empty item in {text!r}")
    values = []
    for item in items:
        try:
            values.append(convert(item))
        except ValueError:
            kind = "an integer" if convert is int else "a number"
            raise ValueError(f"{item!r} is not {kind}") from None
    return values


def unique(values: Iterable[Any]) -> list[Any]:
    """Values in first-seen order without repeats: ``--seed 1,2,1`` is two cells, not three."""
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def sweep_spec(
    values: Mapping[str, Sequence[Any]], fixed: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """``(base, axes)`` for ``experiments.create``.

    ``values`` maps a generation field to every value the user gave for it. A field with one value is fixed
    and goes into ``base``; a field with several becomes an axis (in AXIS_ORDER, then any other fields in the
    order given). Fields with no values are left to the daemon's defaults. ``fixed`` fields go into ``base``.
    """
    base: dict[str, Any] = {key: value for key, value in (fixed or {}).items() if value is not None}
    axes: dict[str, list[Any]] = {}
    ordered = [name for name in AXIS_ORDER if name in values] + [name for name in values if name not in AXIS_ORDER]
    for name in ordered:
        options = unique(values[name])
        if len(options) == 1:
            base[name] = options[0]
        elif options:
            if name in base:
                raise ValueError(f"{name!r} is both fixed and swept")
            axes[name] = options
    return base, axes


def cell_count(axes: Mapping[str, Sequence[Any]]) -> int:
    return math.prod(len(values) for values in axes.values())


class CsvList(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """One option occurrence holding a comma-separated list of numbers; ``multiple=True`` collects them."""

    def __init__(self, convert: Callable[[str], Any]) -> None:
        self.convert_item = convert
        self.name = "list" if convert is not int else "int-list"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[Any]:
        if isinstance(value, list):
            return value
        try:
            return split_csv(str(value), self.convert_item)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Lora(click.ParamType):  # type: ignore[type-arg]
    name = "NAME[:WEIGHT]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        try:
            return parse_lora(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


LORA_HELP = (
    "A LoRA (see `cauldronctl loras`) as NAME:WEIGHT, A1111's <lora:NAME:WEIGHT>; the weight defaults to 1. "
    "Repeat for several."
)


def lora_option(help_note: str = "") -> Callable[[Command], Command]:
    """``--lora`` collected as ``loras``: ``[{"name", "weight"}]``, the daemon's structured ``loras`` param."""
    text = " ".join(filter(None, [LORA_HELP, help_note]))
    return click.option("--lora", "loras", multiple=True, type=Lora(), help=text)


class Size(click.ParamType):  # type: ignore[type-arg]
    name = "WxH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def flat(lists: Iterable[Sequence[Any]]) -> list[Any]:
    return [value for values in lists for value in values]


def size_fields(size: tuple[int, int] | None, width: Any, height: Any) -> tuple[Any, Any]:
    """``--size`` or ``--width``/``--height``: one way per command line, never both."""
    if size is None:
        return width, height
    if width or height:
        raise click.UsageError("use --size or --width/--height, not both")
    return size
