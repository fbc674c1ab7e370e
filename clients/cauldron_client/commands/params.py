"""Turning command-line options into generation params and sweep specs. The conversions are pure functions so
they can be tested without a daemon; the click types only wrap them."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import click

# Axis order in the spec: the first axis is outermost, so the most expensive switch (the model) goes first and
# the cheapest (the seed) last; the daemon's planner reorders for speed anyway, this only fixes cell order.
AXIS_ORDER = (
    "model",
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


def parse_size(text: str) -> tuple[int, int]:
    """``"512x768"`` -> ``(512, 768)`` (width, height)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"expected WIDTHxHEIGHT such as 512x768, got {text!r}")
    return int(match.group(1)), int(match.group(2))


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
