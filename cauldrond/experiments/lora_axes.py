"""LoRAs in an experiment: the prompt's ``<lora:...>`` tags taken into the ``loras`` param, and the ``lora`` and
``lora_weight`` axes.

A cell's LoRAs are its ``loras`` param followed by its prompt's tags. The ``lora`` axis makes one LoRA the cell's
only one (``None``: no LoRA) at the weight the cell gave it, or 1; ``lora_weight`` sets the weight of every LoRA
the cell applies. Both are applied after every other axis, so they also act on LoRAs a Prompt S/R axis wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from cauldrond.experiments.errors import SpecError
from cauldrond.extra_networks import DEFAULT_WEIGHT, LoraTagError, split_lora_tags
from cauldrond.params import LoraRef

LORA_AXIS = "lora"
LORA_WEIGHT_AXIS = "lora_weight"
LORA_AXES = (LORA_AXIS, LORA_WEIGHT_AXIS)
NO_LORA = ("None", "")  # A1111's X/Y/Z plot writes "None" for "without"


def take_prompt_loras(cell: dict[str, Any]) -> None:
    """Move the prompt's ``<lora:...>`` tags into ``cell["loras"]``, after the LoRAs given as a param. A1111
    reads tags from the positive prompt only; a negative prompt keeps its text as it is."""
    prompt = cell.get("prompt")
    if not isinstance(prompt, str):
        return
    try:
        stripped, tagged = split_lora_tags(prompt)
    except LoraTagError as exc:
        raise SpecError(f"parameter 'prompt': {exc}", field="prompt", value=prompt[:200]) from None
    if tagged:
        cell["prompt"] = stripped
        cell["loras"] = [*_as_list(cell.get("loras")), *tagged]


def check_axis_value(axis: str, value: Any) -> None:
    """A LoRA name or weight as the ``loras`` param would take it; SpecError naming the value otherwise."""
    if axis == LORA_AXIS and value in NO_LORA:
        return
    candidate = {"name": value} if axis == LORA_AXIS else {"name": "x", "weight": value}
    try:
        LoraRef.model_validate(candidate, strict=True)
    except ValidationError as exc:
        raise SpecError(f"axis {axis!r}: value {value!r}: {exc.errors()[0]['msg']}", field=axis, value=value) from exc


def apply_lora_axis(cell: dict[str, Any], axis: str, value: Any, axis_names: Sequence[str]) -> None:
    loras = _as_list(cell.get("loras"))
    if axis == LORA_AXIS:
        if value in NO_LORA:
            cell["loras"] = []
            return
        weight = _weight_of(loras[0]) if loras else DEFAULT_WEIGHT
        cell["loras"] = [{"name": value, "weight": weight}]
        return
    if not loras:
        if LORA_AXIS in axis_names:
            return  # the lora axis's "None" column: no LoRA whatever the weight
        raise SpecError(
            f"axis {LORA_WEIGHT_AXIS!r}: the cells apply no LoRA; name one in 'loras', as <lora:name> in the "
            "prompt, or with a 'lora' axis",
            field=LORA_WEIGHT_AXIS,
            value=value,
        )
    cell["loras"] = [{**_as_dict(lora), "weight": value} for lora in loras]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else ([] if value is None else [value])


def _as_dict(lora: Any) -> dict[str, Any]:
    if isinstance(lora, LoraRef):
        return lora.model_dump()
    return dict(lora) if isinstance(lora, dict) else {"name": lora}


def _weight_of(lora: Any) -> Any:
    return _as_dict(lora).get("weight", DEFAULT_WEIGHT)
