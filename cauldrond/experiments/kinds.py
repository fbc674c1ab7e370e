"""The named experiment types, each reduced to the one general form: base params plus axes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cauldrond.experiments.errors import SpecError
from cauldrond.experiments.values import parse_axis_values
from cauldrond.params import RANDOM_SEED

# Outermost first: one prompt's images stay together, and steps vary fastest so each convergence series
# (same prompt, model, sampler, seed) is a run of adjacent cells.
CONVERGENCE_AXES = ("prompt", "model", "sampler", "seed", "steps")


def convergence_spec(
    *,
    base: Mapping[str, Any],
    prompts: list[str],
    models: list[str] | str,
    samplers: list[str] | str,
    steps: list[int] | str,
    seeds: list[int] | str,
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Prompts × models × samplers × seeds × steps as (base, axes). An axis of a single value is folded into
    base, so the spec names only what varies."""
    if not isinstance(prompts, list):
        # A prompt may hold commas; reading it as CSV would split it.
        raise SpecError("prompts must be a list of strings", field="prompt", value=prompts)
    given: dict[str, list[Any] | str] = {
        "prompt": prompts,
        "model": models,
        "sampler": samplers,
        "seed": seeds,
        "steps": steps,
    }
    spec_base = dict(base)
    axes: dict[str, list[Any]] = {}
    for name in CONVERGENCE_AXES:
        values = parse_axis_values(name, given[name])
        if len(values) == 1:
            spec_base[name] = values[0]
        else:
            axes[name] = values
    return spec_base, axes


def cfg_spec(
    *, image_params: Mapping[str, Any], cfg: list[float] | str, vary_seed: bool = False
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """An existing image's params, seed included, with CFG as the only axis: the same picture at each guidance.
    With ``vary_seed`` the image's seed is dropped and each cell draws its own (the cells then differ in seed too)."""
    base = dict(image_params)
    if vary_seed:
        base["seed"] = RANDOM_SEED
    return base, {"cfg_scale": parse_axis_values("cfg_scale", cfg)}


# Requests that came in through the AUTOMATIC1111-compatible API (cauldrond/a1111/).
A1111_KIND = "a1111"


def a1111_spec(*, base: Mapping[str, Any], seeds: list[int]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """An A1111 txt2img request: ``batch_size × n_iter`` images whose seeds count up from the request's seed, as
    A1111's processing.py draws them, as (base, axes): a seed axis when there is more than one image."""
    if not seeds:
        raise SpecError("an A1111 request makes at least one image", field="n_iter", value=0)
    spec_base = dict(base)
    if len(seeds) == 1:
        spec_base["seed"] = seeds[0]
        return spec_base, {}
    spec_base.pop("seed", None)
    return spec_base, {"seed": list(seeds)}
