"""Experiment files: the TOML that ``cauldronctl run FILE`` submits, and the RPC requests an experiment becomes.

The client checks only the file's *shape* (known keys, right types, required keys present) so a typo is one
clear line naming the key and the file before anything is sent. What values *mean* (a sampler name, a range, an
axis name) is the daemon's to judge: it knows the models, samplers and limits, and answers with one error.

    name = "sampler convergence"
    kind = "convergence"          # "sweep" (default) | "convergence" | "cfg"
    priority = 0
    vary_seed = false             # true: each cell draws its own seed for a seed of -1 (default: one per experiment)
    prompts = ["a lighthouse at dusk"]
    samplers = ["Euler", "DPM++ 2M"]
    steps = "4-40 [10]"
    seeds = [1, 2]
    [base]
    width = 128
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cauldron_client.errors import CauldronError

KINDS = ("sweep", "convergence", "cfg")
COMMON_KEYS = ("name", "kind", "priority", "vary_seed")
# Convergence series vary only in steps, so steps is the innermost axis; docs/rpc.md gives this order.
CONVERGENCE_AXES = {"prompts": "prompt", "models": "model", "samplers": "sampler", "seeds": "seed", "steps": "steps"}
KIND_KEYS: dict[str, tuple[str, ...]] = {
    "sweep": ("base", "axes", "cells"),
    "convergence": ("base", *CONVERGENCE_AXES),
    "cfg": ("image_id", "cfg"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "sweep": ("base",),
    "convergence": ("prompts", "samplers", "steps"),  # no models: the daemon's default_model
    "cfg": ("image_id", "cfg"),
}
METHODS = {"sweep": "experiments.create", "convergence": "experiments.convergence", "cfg": "experiments.cfg"}

Scalar = str | int | float | bool


class ExperimentFileError(CauldronError):
    """A malformed experiment file: ``<file>: <key>: <problem>``, one line."""

    def __init__(self, source: str, key: str | None, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")


@dataclass(frozen=True)
class ExperimentSpec:
    """One experiment as submitted: its kind plus the kind's own params (already in RPC form)."""

    kind: str = "sweep"
    name: str | None = None
    priority: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # A1111's "Keep -1 for seeds": a seed of -1 is drawn per cell instead of once for the whole experiment.
    vary_seed: bool = False

    @property
    def method(self) -> str:
        return METHODS[self.kind]

    def request(self) -> dict[str, Any]:
        """Named params for ``self.method``."""
        request = dict(self.params)
        if self.kind == "sweep":
            request["kind"] = "sweep"
        if self.name is not None:
            request["name"] = self.name
        if self.priority is not None:
            request["priority"] = self.priority
        if self.vary_seed:
            request["vary_seed"] = True
        return request

    def plan_request(self, image: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Named params for ``experiments.plan``, which takes the general form (base + axes) of every kind.

        A CFG experiment starts from an image's params, so its plan needs ``image`` (an ``images.get`` image).
        """
        plan: dict[str, Any] = {"kind": self.kind}
        if self.kind == "sweep":
            plan.update(self.params)
        elif self.kind == "convergence":
            # As experiments.convergence does: a one-value list is fixed in base, not an axis of one.
            base, axes = dict(self.params.get("base", {})), {}
            for key, axis in CONVERGENCE_AXES.items():
                values = self.params.get(key)
                if isinstance(values, list) and len(values) == 1:
                    base[axis] = values[0]
                elif values is not None:
                    axes[axis] = values
            plan["base"], plan["axes"] = base, axes
        else:
            if image is None:
                raise ValueError("planning a cfg experiment needs the image it starts from")
            plan["base"] = image_base(image)
            if self.vary_seed:
                plan["base"]["seed"] = -1  # as experiments.cfg does: each cell draws its own
            plan["axes"] = {"cfg_scale": self.params["cfg"]}
        if self.name is not None:
            plan["name"] = self.name
        if self.priority is not None:
            plan["priority"] = self.priority
        if self.vary_seed:
            plan["vary_seed"] = True
        return plan

    def axes(self) -> dict[str, Any]:
        """The axes as the user wrote them (lists or value strings), for a summary line."""
        if self.kind == "sweep":
            axes = self.params.get("axes")
            return dict(axes) if isinstance(axes, Mapping) else {}
        if self.kind == "convergence":
            return {axis: self.params[key] for key, axis in CONVERGENCE_AXES.items() if key in self.params}
        return {"cfg_scale": self.params.get("cfg")}


def image_base(image: Mapping[str, Any]) -> dict[str, Any]:
    """The generation params that reproduce ``image``: its recorded params with the seed actually used."""
    base = dict(image.get("params") or {})
    seed = image.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        base["seed"] = seed
    return base


# -- reading and checking files ------------------------------------------------------------------------------


def load_experiment(path: Path) -> ExperimentSpec:
    """Read and check an experiment file; every problem is an ExperimentFileError naming the file."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExperimentFileError(source, None, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror.lower() if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ExperimentFileError(source, None, f"cannot read it: {reason}") from None
    return parse_experiment(text, source)


def parse_experiment(text: str, source: str = "<experiment>") -> ExperimentSpec:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentFileError(source, None, f"not valid TOML: {exc}") from None
    return experiment_from_mapping(data, source)


def experiment_from_mapping(data: Mapping[str, Any], source: str = "<experiment>") -> ExperimentSpec:
    """Check the shape of a parsed file and build the spec. The first problem found is raised."""
    check = _Checker(source)
    kind = data.get("kind", "sweep")
    if not isinstance(kind, str) or kind not in KINDS:
        raise check.error("kind", f"must be one of {', '.join(repr(k) for k in KINDS)}, got {kind!r}")
    allowed = (*COMMON_KEYS, *KIND_KEYS[kind])
    for key in data:
        if key not in allowed:
            raise check.error(key, _unknown_key(key, kind))
    for key in REQUIRED[kind]:
        if key not in data:
            raise check.error(key, f"missing (a {kind} experiment needs {_and(REQUIRED[kind])})")

    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise check.error("name", f"must be a string, got {_type(name)}")
    priority = data.get("priority")
    if priority is not None:
        check.integer("priority", priority)
    vary_seed = data.get("vary_seed", False)
    if not isinstance(vary_seed, bool):
        raise check.error("vary_seed", f"must be true or false, got {_type(vary_seed)}")

    params: dict[str, Any] = {}
    if kind == "sweep":
        params["base"] = check.params_table("base", data["base"])
        if "axes" in data:
            params["axes"] = check.axes(data["axes"])
        if "cells" in data:
            params["cells"] = check.cells(data["cells"])
        if "axes" in data and "cells" in data:
            raise check.error("cells", "give either [axes] or [[cells]], not both")
    elif kind == "convergence":
        if "base" in data:
            params["base"] = check.params_table("base", data["base"])
        params["prompts"] = check.strings("prompts", data["prompts"], allow_value_string=False)
        for key in ("models", "samplers"):
            params[key] = check.strings(key, data[key], allow_value_string=True)
        params["steps"] = check.values("steps", data["steps"], integers=True)
        if "seeds" in data:
            params["seeds"] = check.values("seeds", data["seeds"], integers=True)
    else:
        image_id = data["image_id"]
        check.integer("image_id", image_id)
        if image_id < 1:
            raise check.error("image_id", f"must be an image id (1 or more), got {image_id}")
        params["image_id"] = image_id
        params["cfg"] = check.values("cfg", data["cfg"], integers=False)
    return ExperimentSpec(kind=kind, name=name, priority=priority, params=params, vary_seed=vary_seed)


def _unknown_key(key: str, kind: str) -> str:
    for other, keys in KIND_KEYS.items():
        if key in keys:
            return f"not used by a {kind} experiment (it belongs to kind = {other!r})"
    return f"unknown key (a {kind} experiment takes {_and((*COMMON_KEYS, *KIND_KEYS[kind]))})"


def _and(names: tuple[str, ...]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, dt.date | dt.time):
        return "a date/time"
    return type(value).__name__


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


@dataclass(frozen=True)
class _Checker:
    source: str

    def error(self, key: str | None, problem: str) -> ExperimentFileError:
        return ExperimentFileError(self.source, key, problem)

    def integer(self, key: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, got {_type(value)}")

    def params_table(self, key: str, value: Any) -> dict[str, Scalar]:
        """A table of generation params: one scalar per field (lists belong in [axes])."""
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table of generation params ([{key}]), got {_type(value)}")
        for name, item in value.items():
            if isinstance(item, list):
                raise self.error(f"{key}.{name}", "must be a single value; put lists of values under [axes]")
            if not _is_scalar(item):
                raise self.error(f"{key}.{name}", f"must be a string, number or boolean, got {_type(item)}")
        return dict(value)

    def axes(self, value: Any) -> dict[str, list[Scalar] | str]:
        if not isinstance(value, dict):
            raise self.error("axes", f"must be a table mapping axis names to values ([axes]), got {_type(value)}")
        if not value:
            raise self.error("axes", "is empty; remove it for a single cell or add an axis")
        return {name: self._axis(f"axes.{name}", item) for name, item in value.items()}

    def _axis(self, key: str, value: Any) -> list[Scalar] | str:
        if isinstance(value, str):
            if not value.strip():
                raise self.error(key, "is an empty value string")
            return value
        if not isinstance(value, list):
            example = '"10-40 [4]"'
            raise self.error(key, f"must be a list of values or a value string such as {example}, got {_type(value)}")
        if not value:
            raise self.error(key, "is an empty list")
        for index, item in enumerate(value):
            if not _is_scalar(item):
                raise self.error(f"{key}[{index}]", f"must be a string, number or boolean, got {_type(item)}")
        return list(value)

    def cells(self, value: Any) -> list[dict[str, Scalar]]:
        if not isinstance(value, list) or not value:
            raise self.error("cells", f"must be a non-empty array of tables ([[cells]]), got {_type(value)}")
        return [self.params_table(f"cells[{index}]", item) for index, item in enumerate(value)]

    def strings(self, key: str, value: Any, *, allow_value_string: bool) -> list[str] | str:
        if isinstance(value, str) and allow_value_string:
            if not value.strip():
                raise self.error(key, "is an empty value string")
            return value
        if not isinstance(value, list):
            wanted = "a list of strings or a value string" if allow_value_string else "a list of strings"
            raise self.error(key, f"must be {wanted}, got {_type(value)}")
        if not value:
            raise self.error(key, "is an empty list")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.error(f"{key}[{index}]", f"must be a non-empty string, got {_type(item)}")
        return list(value)

    def values(self, key: str, value: Any, *, integers: bool) -> list[int | float] | str:
        """Numbers as a list or an A1111 value string; ``integers`` refuses fractions in the list."""
        if isinstance(value, str):
            if not value.strip():
                raise self.error(key, "is an empty value string")
            return value
        if not isinstance(value, list):
            example = '"10-40 [4]"' if integers else '"3-12 [4]"'
            raise self.error(key, f"must be a list of numbers or a value string such as {example}, got {_type(value)}")
        if not value:
            raise self.error(key, "is an empty list")
        for index, item in enumerate(value):
            number = isinstance(item, int | float) and not isinstance(item, bool)
            if not number or (integers and not isinstance(item, int)):
                wanted = "an integer" if integers else "a number"
                raise self.error(f"{key}[{index}]", f"must be {wanted}, got {_type(item)}")
        return list(value)
