"""A1111 sampler names, schedule types and the diffusers schedulers they build (no model needed)."""

from __future__ import annotations

from typing import Any

import pytest

from cauldrond.models.tiny import SCHEDULER_CONFIG
from cauldrond.providers.diffusers.samplers import (
    SAMPLERS,
    build_scheduler,
    list_samplers,
    resolve_sampler,
)

REQUIRED = [
    "Euler",
    "Euler a",
    "Heun",
    "DPM2",
    "DPM2 a",
    "LMS",
    "DPM++ 2M",
    "DPM++ 2M SDE",
    "DPM++ SDE",
    "DPM++ 2S a",
    "DDIM",
    "PLMS",
    "UniPC",
    "DEIS",
    "LCM",
]
COMBINATIONS = [(info.name, schedule) for info in list_samplers() for schedule in info.schedules]

# The diffusers class for each A1111 name, from diffusers' own table (huggingface/diffusers
# docs/source/en/api/schedulers/overview.md at commit 01337da7633c4c663e76e75550e6f9d94fa7dc97), not from ours.
DIFFUSERS_TABLE = {
    "DPM++ 2M": "DPMSolverMultistepScheduler",
    "DPM++ 2M SDE": "DPMSolverMultistepScheduler",
    "DPM2": "KDPM2DiscreteScheduler",
    "DPM2 a": "KDPM2AncestralDiscreteScheduler",
    "Euler": "EulerDiscreteScheduler",
    "Euler a": "EulerAncestralDiscreteScheduler",
    "Heun": "HeunDiscreteScheduler",
    "LMS": "LMSDiscreteScheduler",
    "DEIS": "DEISMultistepScheduler",
    "UniPC": "UniPCMultistepScheduler",
    # Not in that table, named by hand: DDIM and PLMS are diffusers' DDIM and PNDM (PLMS) schedulers; LCM's is
    # LCMScheduler; DPM++ 3M SDE is the multistep DPM-Solver at order 3. The table has "N/A, very similar to
    # DPMSolverSinglestepScheduler" for DPM++ 2S a, and DPMSolverSinglestepScheduler for DPM++ SDE, where we use
    # DPMSolverSDEScheduler, the port of k-diffusion's sample_dpmpp_sde (test_sampler_parity.py: exact vs A1111).
    "DDIM": "DDIMScheduler",
    "PLMS": "PNDMScheduler",
    "LCM": "LCMScheduler",
    "DPM++ 3M SDE": "DPMSolverMultistepScheduler",
    "DPM++ 2S a": "DPMSolverSinglestepScheduler",
    "DPM++ SDE": "DPMSolverSDEScheduler",
}


def _pndm_config() -> dict[str, Any]:
    """The SD 1.x scheduler config exactly as a saved model folder holds it."""
    from diffusers import PNDMScheduler

    return dict(PNDMScheduler(**SCHEDULER_CONFIG).config)


def test_every_required_sampler_is_listed_with_automatic() -> None:
    infos = {info.name: info for info in list_samplers()}
    for name in REQUIRED:
        assert name in infos
        assert infos[name].schedules[0] == "Automatic"
    assert set(infos["DPM++ 2M"].schedules) == {"Automatic", "Karras", "Exponential"}
    # diffusers' ancestral Euler cannot space sigmas the Karras way, so it must not offer it.
    assert infos["Euler a"].schedules == ("Automatic",)
    assert infos["DDIM"].schedules == ("Automatic",)


@pytest.mark.parametrize(
    ("given", "schedule", "expected"),
    [
        ("DPM++ 2M Karras", "Automatic", ("DPM++ 2M", "Karras")),
        ("dpm++ 2m karras", "automatic", ("DPM++ 2M", "Karras")),
        ("DPM++ 2M SDE Exponential", "Automatic", ("DPM++ 2M SDE", "Exponential")),
        ("DPM++ 2M SDE Karras", "Karras", ("DPM++ 2M SDE", "Karras")),
        ("euler A", "Automatic", ("Euler a", "Automatic")),
        ("  Euler   a ", "Automatic", ("Euler a", "Automatic")),
        ("LMS", "karras", ("LMS", "Karras")),
        ("PNDM", "Automatic", ("PLMS", "Automatic")),
        ("unipc", "Exponential", ("UniPC", "Exponential")),
    ],
)
def test_resolve_accepts_case_spacing_legacy_names_and_aliases(
    given: str, schedule: str, expected: tuple[str, str]
) -> None:
    assert resolve_sampler(given, schedule) == expected


def test_unknown_sampler_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown sampler 'Euler b'") as caught:
        resolve_sampler("Euler b")
    assert "DPM++ 2M" in str(caught.value) and "UniPC" in str(caught.value)


def test_schedule_that_does_not_apply_is_refused() -> None:
    with pytest.raises(ValueError, match="'Karras' does not apply to sampler 'Euler a'; valid: Automatic"):
        resolve_sampler("Euler a", "Karras")
    with pytest.raises(ValueError, match="does not apply"):
        resolve_sampler("DDIM Karras")


def test_unknown_schedule_and_conflicting_legacy_name_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown schedule type 'Polyexponential'"):
        resolve_sampler("Euler", "Polyexponential")
    with pytest.raises(ValueError, match="conflicts"):
        resolve_sampler("DPM++ 2M Karras", "Exponential")


@pytest.mark.parametrize(("sampler", "schedule"), COMBINATIONS)
def test_every_combination_builds_and_sets_timesteps(sampler: str, schedule: str) -> None:
    scheduler = build_scheduler(_pndm_config(), sampler, schedule)
    assert type(scheduler).__name__ == DIFFUSERS_TABLE[sampler]
    scheduler.set_timesteps(3)
    assert len(scheduler.timesteps) >= 3
    config = scheduler.config
    if "use_karras_sigmas" in config and len(SAMPLERS[sampler].schedules) > 1:
        assert config["use_karras_sigmas"] is (schedule == "Karras")
        assert config["use_exponential_sigmas"] is (schedule == "Exponential")
    # The model's betas must survive the switch, or every sampler would denoise a different schedule.
    assert config["beta_schedule"] == "scaled_linear"
    assert config["beta_end"] == pytest.approx(0.012)


def test_algorithm_and_order_follow_the_a1111_name() -> None:
    base = _pndm_config()
    assert build_scheduler(base, "DPM++ 2M", "Automatic").config["algorithm_type"] == "dpmsolver++"
    sde = build_scheduler(base, "DPM++ 2M SDE", "Karras").config
    assert (sde["algorithm_type"], sde["solver_order"], sde["use_karras_sigmas"]) == ("sde-dpmsolver++", 2, True)
    assert build_scheduler(base, "DPM++ 3M SDE", "Automatic").config["solver_order"] == 3
    assert build_scheduler(base, "PLMS", "Automatic").config["skip_prk_steps"] is True
    assert build_scheduler(base, "DDIM", "Automatic").config["clip_sample"] is False


def test_flags_of_the_model_config_do_not_leak_into_another_schedule() -> None:
    # A model may ship a scheduler config with Karras sigmas on; "Automatic" must still mean uniform spacing.
    karras_config = dict(build_scheduler(_pndm_config(), "DPM++ 2M", "Karras").config)
    automatic = build_scheduler(karras_config, "Euler", "Automatic")
    assert automatic.config["use_karras_sigmas"] is False
    assert "algorithm_type" not in automatic.config


def test_switching_sampler_leaves_the_base_config_untouched() -> None:
    base = _pndm_config()
    before = dict(base)
    build_scheduler(base, "DPM++ 2M SDE", "Exponential")
    assert base == before
