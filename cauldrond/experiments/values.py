"""An axis's values from a list or from A1111 X/Y/Z plot text: CSV items, numeric ranges with a step, a count or
``:count``. The axis's kind (int, float, text, size) follows from its name."""

from __future__ import annotations

import csv
import io
import math
import re
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Literal

from cauldrond.experiments.errors import SpecError
from cauldrond.params import GenerationParams
from cauldrond.suggestions import unknown

AxisKind = Literal["int", "float", "text", "size"]

SIZE_AXIS = "size"
PROMPT_SR_AXIS = "prompt_sr"
# One axis may not expand to more values than this; checked before a range is materialised.
MAX_AXIS_VALUES = 10_000
MIN_SIZE, MAX_SIZE = 64, 4096

_INT = r"[+-]?\d+"
_FLOAT = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"


def _range_pattern(number: str) -> re.Pattern[str]:
    # start - end, then optionally (+step), [count] or :count. Signs bind to the numbers, so "-5--1" is -5 to -1.
    return re.compile(
        rf"(?P<start>{number})\s*-\s*(?P<end>{number})"
        rf"(?:\s*\(\s*(?P<step>{number})\s*\)|\s*\[\s*(?P<count>\d+)\s*\]|\s*:\s*(?P<count2>\d+))?"
    )


_INT_VALUE = re.compile(_INT)
_FLOAT_VALUE = re.compile(_FLOAT)
_INT_RANGE = _range_pattern(_INT)
_FLOAT_RANGE = _range_pattern(_FLOAT)
_LOOKS_LIKE_RANGE = re.compile(r"\d\s*-|[(\[:]")
_SIZE = re.compile(r"(\d+)\s*[xX×]\s*(\d+)")


def _kind_of(annotation: Any) -> AxisKind:
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    return "text"


# Derived from GenerationParams so a new field is an axis without touching this table.
AXIS_KINDS: dict[str, AxisKind] = {
    # A list field (loras) has axes of its own below.
    **{
        name: _kind_of(info.annotation)
        for name, info in GenerationParams.model_fields.items()
        if isinstance(info.annotation, type)
    },
    SIZE_AXIS: "size",
    PROMPT_SR_AXIS: "text",
    "lora": "text",  # experiments/lora_axes.py
    "lora_weight": "float",
}


def axis_kind(axis: str) -> AxisKind:
    kind = AXIS_KINDS.get(axis)
    if kind is None:
        hint = unknown("axis", str(axis), AXIS_KINDS, None)
        raise SpecError(
            f"{hint.message()}; valid axes: {', '.join(AXIS_KINDS)}", field=axis, value=axis, **hint.error_data()
        )
    return kind


def parse_axis_values(axis: str, raw: list[Any] | tuple[Any, ...] | str) -> list[Any]:
    """The values of ``axis``. A list is taken item by item, each of the axis's type (an int for an int axis, an
    int or float for a float axis, a string otherwise); a string is read as A1111 does. Never returns empty."""
    kind = axis_kind(axis)
    if isinstance(raw, str):
        values = _parse_text(axis, kind, raw)
    elif isinstance(raw, list | tuple):
        if len(raw) > MAX_AXIS_VALUES:
            raise _too_many(axis, len(raw))
        values = [_checked_item(axis, kind, item) for item in raw]
    else:
        raise SpecError(
            f"axis {axis!r}: give a list of values or a string such as '1-5', got {type(raw).__name__}",
            field=axis,
            value=raw,
        )
    if not values:
        raise SpecError(f"axis {axis!r} has no values", field=axis, value=raw)
    return values


def parse_size(axis: str, value: Any) -> tuple[int, int]:
    """``"512x768"`` (or a pair of ints) as (width, height), each a multiple of 8 in 64..4096."""
    if isinstance(value, str):
        match = _SIZE.fullmatch(value.strip())
        if match is None:
            raise _bad_size(axis, value)
        width, height = int(match.group(1)), int(match.group(2))
    elif isinstance(value, list | tuple) and len(value) == 2 and all(_is_int(part) for part in value):
        width, height = value
    else:
        raise _bad_size(axis, value)
    for label, side in (("width", width), ("height", height)):
        if not MIN_SIZE <= side <= MAX_SIZE:
            raise SpecError(
                f"axis {axis!r}: bad size {value!r}: {label} {side} is outside {MIN_SIZE}..{MAX_SIZE}",
                field=axis,
                value=value,
            )
        if side % 8:
            raise SpecError(
                f"axis {axis!r}: bad size {value!r}: {label} {side} is not a multiple of 8", field=axis, value=value
            )
    return width, height


def _bad_size(axis: str, value: Any) -> SpecError:
    return SpecError(f"axis {axis!r}: bad size {value!r}; write WIDTHxHEIGHT, e.g. 512x768", field=axis, value=value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked_item(axis: str, kind: AxisKind, item: Any) -> Any:
    if kind == "int":
        if _is_int(item):
            return item
        raise SpecError(
            f"axis {axis!r}: value {item!r} is not an integer (write ranges as one string, e.g. '1-5')",
            field=axis,
            value=item,
        )
    if kind == "float":
        if (_is_int(item) or isinstance(item, float)) and math.isfinite(item):
            return float(item)
        raise SpecError(
            f"axis {axis!r}: value {item!r} is not a finite number (write ranges as one string, e.g. '5-9 (+0.5)')",
            field=axis,
            value=item,
        )
    if kind == "size":
        width, height = parse_size(axis, item)
        return f"{width}x{height}"
    if isinstance(item, str):
        return item
    raise SpecError(f"axis {axis!r}: value {item!r} is not a string", field=axis, value=item)


def _csv_items(axis: str, text: str) -> list[str]:
    try:
        rows = list(csv.reader(io.StringIO(text), skipinitialspace=True))
    except csv.Error as exc:
        raise SpecError(f"axis {axis!r}: cannot read {text!r} as CSV: {exc}", field=axis, value=text) from exc
    return [item.strip() for row in rows for item in row]


def _parse_text(axis: str, kind: AxisKind, text: str) -> list[Any]:
    items = _csv_items(axis, text)
    if kind == "text":
        if len(items) > MAX_AXIS_VALUES:
            raise _too_many(axis, len(items))
        return items
    if kind == "size":
        if len(items) > MAX_AXIS_VALUES:
            raise _too_many(axis, len(items))
        return [_checked_item(axis, kind, item) for item in items]
    expand = _expand_int if kind == "int" else _expand_float
    values: list[Any] = []
    for item in items:
        if not item:
            raise SpecError(f"axis {axis!r}: empty value in {text!r}", field=axis, value=text)
        values.extend(expand(axis, item, MAX_AXIS_VALUES - len(values)))
    if len(values) > MAX_AXIS_VALUES:
        raise _too_many(axis, len(values))
    return values


def _too_many(axis: str, count: int) -> SpecError:
    return SpecError(f"axis {axis!r}: {count} values, over the limit of {MAX_AXIS_VALUES} per axis", field=axis)


def _shown(item: str) -> str:
    # Messages quote the value at fault; a 60 KiB one would bury the rest.
    return repr(item) if len(item) <= 80 else repr(item[:77] + "...")


def _bad(axis: str, item: str, why: str = "") -> SpecError:
    what = "range" if _LOOKS_LIKE_RANGE.search(item.lstrip("+-")) else "value"
    suffix = f": {why}" if why else ""
    return SpecError(f"axis {axis!r}: bad {what} {_shown(item)}{suffix}", field=axis, value=item)


def _count(match: re.Match[str]) -> int | None:
    count = match.group("count") or match.group("count2")
    return None if count is None else int(count)


def _expand_int(axis: str, item: str, room: int) -> list[int]:
    if _INT_VALUE.fullmatch(item):
        return [_to_int(axis, item, item)]
    match = _INT_RANGE.fullmatch(item)
    if match is None:
        raise _bad(axis, item, "expected an integer or a range such as 1-5, 1-5 (+2), 10-20 [5] or 10-20:5")
    start, end = _to_int(axis, item, match.group("start")), _to_int(axis, item, match.group("end"))
    count = _count(match)
    if count is not None:
        _check_count(axis, item, count, room)
        if count == 1:
            return [start]
        # A1111 takes int() of evenly spaced floats: truncation towards zero. Fractions keep it exact.
        return [int(Fraction(start * (count - 1 - i) + end * i, count - 1)) for i in range(count)]
    step = _to_int(axis, item, match.group("step")) if match.group("step") else (1 if end >= start else -1)
    _check_step(axis, item, step, end - start)
    _check_count(axis, item, (end - start) // step + 1, room)
    return list(range(start, end + (1 if step > 0 else -1), step))


def _expand_float(axis: str, item: str, room: int) -> list[float]:
    if _FLOAT_VALUE.fullmatch(item):
        return [_to_float(axis, item, _to_decimal(axis, item, item))]
    match = _FLOAT_RANGE.fullmatch(item)
    if match is None:
        raise _bad(axis, item, "expected a number or a range such as 5-9 (+0.5), 3.0-12.0 [4] or 3-12:4")
    start, end = _to_decimal(axis, item, match.group("start")), _to_decimal(axis, item, match.group("end"))
    count = _count(match)
    try:
        if count is not None:
            _check_count(axis, item, count, room)
            if count == 1:
                return [_to_float(axis, item, start)]
            # Decimal arithmetic keeps 0.1 steps from drifting into 0.30000000000000004.
            span = end - start
            return [_to_float(axis, item, start + span * i / (count - 1)) for i in range(count)]
        raw_step = match.group("step")
        step = _to_decimal(axis, item, raw_step) if raw_step else Decimal(1 if end >= start else -1)
        _check_step(axis, item, step, end - start)
        steps = ((end - start) / step).to_integral_value(rounding=ROUND_FLOOR)
        _check_count(axis, item, steps + 1, room)
        return [_to_float(axis, item, start + step * i) for i in range(int(steps) + 1)]
    except ArithmeticError as exc:  # Decimal overflow on absurd exponents
        raise _bad(axis, item, "numbers out of range") from exc


def _check_step(axis: str, item: str, step: int | Decimal, span: int | Decimal) -> None:
    if step == 0:
        raise _bad(axis, item, "step 0 never reaches the end")
    if span * step < 0:
        raise _bad(axis, item, f"step {step} goes away from the end")


def _check_count(axis: str, item: str, count: int | Decimal, room: int) -> None:
    if count < 1:
        raise _bad(axis, item, "a count of at least 1 is needed")
    if count > room:
        shown = int(count) if count < 10**12 else "over 10^12"
        total = "" if room == MAX_AXIS_VALUES else f" with the {MAX_AXIS_VALUES - room} before it"
        raise SpecError(
            f"axis {axis!r}: range {_shown(item)} gives {shown} values{total}, "
            f"over the limit of {MAX_AXIS_VALUES} per axis",
            field=axis,
            value=item,
        )


def _to_int(axis: str, item: str, text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:  # more digits than int() accepts
        raise _bad(axis, item, "number too long") from exc


def _to_decimal(axis: str, item: str, text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise _bad(axis, item) from exc


def _to_float(axis: str, item: str, value: Decimal) -> float:
    result = float(value)
    if not math.isfinite(result):
        raise _bad(axis, item, "number out of range")
    return result
