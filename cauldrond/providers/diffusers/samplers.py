"""A1111 sampler names mapped onto diffusers schedulers.

A sampler (the solver) and a schedule type (how the noise levels are spaced) are chosen separately, as in
A1111 1.9+. Schedulers are always rebuilt from the model's own scheduler config, so switching sampler never
reloads the model and never inherits flags left over from a previously chosen sampler.
"""

from __future__ import annotations

import importlib.util
import inspect
from dataclasses import dataclass, field
from typing import Any

from cauldrond.providers.base import ProviderError, SamplerInfo
from cauldrond.sampler_names import split_sampler_name

AUTOMATIC = "Automatic"
KARRAS = "Karras"
EXPONENTIAL = "Exponential"
SCHEDULES = (AUTOMATIC, KARRAS, EXPONENTIAL)
_ALL_SCHEDULES = SCHEDULES
_AUTOMATIC_ONLY = (AUTOMATIC,)

# Each schedule type maps to these scheduler flags; every flag is set explicitly (True or False) so a model
# whose shipped scheduler config turns one on cannot leak it into another schedule type.
_SCHEDULE_FLAGS: dict[str, dict[str, bool]] = {
    AUTOMATIC: {"use_karras_sigmas": False, "use_exponential_sigmas": False, "use_beta_sigmas": False},
    KARRAS: {"use_karras_sigmas": True, "use_exponential_sigmas": False, "use_beta_sigmas": False},
    EXPONENTIAL: {"use_karras_sigmas": False, "use_exponential_sigmas": True, "use_beta_sigmas": False},
}

# How far each sampler matches A1111's (k-diffusion's) for the same seed is measured by
# tests/providers/test_sampler_parity.py and explained in docs/samplers.md; the notes below tell users the gist.
_A1111_DISCARDS = "A1111 drops the next-to-last sigma and its Automatic is Karras, so not A1111's image for a seed"

# A1111's k-diffusion (and UniPC) samplers space timesteps evenly from t_max down to 0, which diffusers calls
# "linspace". SD 1.x configs ship "leading" (the DDIM/PLMS convention, kept for those two), which makes the
# multistep solvers start well below t_max from pure noise.
_K_DIFFUSION = {"timestep_spacing": "linspace"}


@dataclass(frozen=True)
class SamplerSpec:
    """How one A1111 sampler is realised in diffusers."""

    scheduler: str  # class name exported by the diffusers package
    kwargs: dict[str, Any] = field(default_factory=dict)
    schedules: tuple[str, ...] = _ALL_SCHEDULES
    note: str = ""
    requires: tuple[str, ...] = ()  # extra importable modules the scheduler needs at run time


SAMPLERS: dict[str, SamplerSpec] = {
    "Euler": SamplerSpec("EulerDiscreteScheduler", dict(_K_DIFFUSION)),
    "Euler a": SamplerSpec(
        "EulerAncestralDiscreteScheduler",
        dict(_K_DIFFUSION),
        _AUTOMATIC_ONLY,
        note="ancestral: adds fresh noise each step, so it never converges",
    ),
    "Heun": SamplerSpec("HeunDiscreteScheduler", dict(_K_DIFFUSION), note="two UNet evaluations per step"),
    "DPM2": SamplerSpec(
        "KDPM2DiscreteScheduler",
        dict(_K_DIFFUSION),
        note=f"two UNet evaluations per step; {_A1111_DISCARDS}",
    ),
    "DPM2 a": SamplerSpec(
        "KDPM2AncestralDiscreteScheduler",
        dict(_K_DIFFUSION),
        note=f"ancestral; two UNet evaluations per step; {_A1111_DISCARDS}",
    ),
    "LMS": SamplerSpec("LMSDiscreteScheduler", dict(_K_DIFFUSION), requires=("scipy",)),
    "DPM++ 2M": SamplerSpec(
        "DPMSolverMultistepScheduler",
        {**_K_DIFFUSION, "algorithm_type": "dpmsolver++", "solver_order": 2, "use_lu_lambdas": False},
        note="Karras: as A1111 within 0.3% (diffusers starts from 0.2% stronger noise); Automatic spaces steps "
        "unlike A1111's Uniform, and A1111's own Automatic is Karras",
    ),
    "DPM++ 2M SDE": SamplerSpec(
        "DPMSolverMultistepScheduler",
        {**_K_DIFFUSION, "algorithm_type": "sde-dpmsolver++", "solver_order": 2, "use_lu_lambdas": False},
        note="stochastic: a Gaussian draw per step where A1111 uses a Brownian tree, so not A1111's image for a "
        "seed; A1111's own Automatic is Exponential",
    ),
    "DPM++ 3M SDE": SamplerSpec(
        "DPMSolverMultistepScheduler",
        {**_K_DIFFUSION, "algorithm_type": "sde-dpmsolver++", "solver_order": 3, "use_lu_lambdas": False},
        note="stochastic; third order: diffusers' third-order SDE solver, not A1111's (k-diffusion's) 3M SDE, "
        "so not A1111's image for a seed",
    ),
    "DPM++ SDE": SamplerSpec(
        "DPMSolverSDEScheduler",
        dict(_K_DIFFUSION),
        # torchsde builds its Brownian tree on the run's device, so the same seed gives other noise on cuda/mps.
        note="stochastic (Brownian noise per image seed, but device-specific); two UNet evaluations per step",
        requires=("torchsde",),
    ),
    "DPM++ 2S a": SamplerSpec(
        "DPMSolverSinglestepScheduler",
        {**_K_DIFFUSION, "algorithm_type": "sde-dpmsolver++", "solver_order": 2},
        note="approximation: diffusers has no ancestral 2S; this is the stochastic 2nd-order singlestep, so not "
        "A1111's image for a seed",
    ),
    "DDIM": SamplerSpec(
        "DDIMScheduler",
        # Clipping x0 to [-1, 1] is meant for pixel-space models; it would damage latents.
        {"clip_sample": False},
        _AUTOMATIC_ONLY,
        note="eta > 0 makes it stochastic",
    ),
    "PLMS": SamplerSpec("PNDMScheduler", {"skip_prk_steps": True}, _AUTOMATIC_ONLY),
    "UniPC": SamplerSpec("UniPCMultistepScheduler", {**_K_DIFFUSION, "solver_order": 2}),
    "DEIS": SamplerSpec("DEISMultistepScheduler", {**_K_DIFFUSION, "solver_order": 2}),
    "LCM": SamplerSpec(
        "LCMScheduler",
        {"clip_sample": False},
        _AUTOMATIC_ONLY,
        note="for LCM-distilled models or LoRAs; use 2-8 steps and low CFG",
    ),
}

ALIASES: dict[str, str] = {"PNDM": "PLMS", "Euler Ancestral": "Euler a", "K_LMS": "LMS"}


def list_samplers() -> list[SamplerInfo]:
    infos = []
    for name, spec in SAMPLERS.items():
        missing = _missing_requirements(spec)
        note = spec.note
        if missing:
            note = "; ".join(filter(None, [note, f"unavailable: install {', '.join(missing)}"]))
        infos.append(SamplerInfo(name=name, schedules=spec.schedules, note=note))
    return infos


def resolve_sampler(name: str, schedule: str = AUTOMATIC) -> tuple[str, str]:
    """Canonical (sampler, schedule) for a user-given pair, case-insensitively.

    Legacy combined names such as "DPM++ 2M Karras" carry their schedule in the name; they win over an
    ``Automatic`` schedule and conflict with any other."""
    schedule_by_lower = {key.lower(): key for key in SCHEDULES}
    canonical_schedule = schedule_by_lower.get(" ".join(schedule.split()).lower())
    if canonical_schedule is None:
        raise ValueError(f"unknown schedule type {schedule!r}; valid: {', '.join(SCHEDULES)}")

    found = split_sampler_name(name, {KARRAS: KARRAS, EXPONENTIAL: EXPONENTIAL}, [*SAMPLERS, *ALIASES])
    if found is None:
        raise ValueError(f"unknown sampler {name!r}; valid: {', '.join(SAMPLERS)}")
    sampler, suffix_schedule = ALIASES.get(found[0], found[0]), found[1]
    if suffix_schedule is not None:
        if canonical_schedule not in (AUTOMATIC, suffix_schedule):
            raise ValueError(
                f"sampler {name!r} already names the {suffix_schedule} schedule, "
                f"which conflicts with schedule {schedule!r}"
            )
        canonical_schedule = suffix_schedule

    allowed = SAMPLERS[sampler].schedules
    if canonical_schedule not in allowed:
        raise ValueError(
            f"schedule {canonical_schedule!r} does not apply to sampler {sampler!r}; valid: {', '.join(allowed)}"
        )
    return sampler, canonical_schedule


def scheduler_kwargs(sampler: str, schedule: str) -> tuple[str, dict[str, Any]]:
    """The diffusers class name and the config overrides for a canonical (sampler, schedule)."""
    spec = SAMPLERS[sampler]
    kwargs = dict(spec.kwargs)
    if spec.schedules != _AUTOMATIC_ONLY:
        kwargs.update(_SCHEDULE_FLAGS[schedule])
    return spec.scheduler, kwargs


def build_scheduler(base_config: dict[str, Any], sampler: str, schedule: str) -> Any:
    """A fresh diffusers ``SchedulerMixin`` for this sampler, built from the model's own scheduler config.

    Accepts the same names as ``resolve_sampler``. Raises ``ValueError`` for unknown names and
    ``ProviderError`` when the scheduler needs a package that is not installed."""
    import diffusers

    sampler, schedule = resolve_sampler(sampler, schedule)
    missing = _missing_requirements(SAMPLERS[sampler])
    if missing:
        raise ProviderError(f"sampler {sampler!r} needs the Python package(s) {', '.join(missing)}; pip install them")
    class_name, overrides = scheduler_kwargs(sampler, schedule)
    scheduler_class = getattr(diffusers, class_name)
    # Keep only what the new class understands: "_class_name" and the old scheduler's own options (e.g. PNDM's
    # skip_prk_steps) would otherwise be logged as unexpected on every switch.
    accepted = set(inspect.signature(scheduler_class.__init__).parameters)
    config = {key: value for key, value in base_config.items() if key in accepted}
    return scheduler_class.from_config(config, **overrides)


def _missing_requirements(spec: SamplerSpec) -> list[str]:
    return [module for module in spec.requires if importlib.util.find_spec(module) is None]
