"""Sampler, schedule and checkpoint names between cauldron and ComfyUI."""

from __future__ import annotations

import pytest
from cauldron_comfyui.mapping import (
    NO_COMFY_EQUIVALENT,
    SAMPLER_TO_COMFY,
    from_ckpt_name,
    from_comfy_sampler,
    to_ckpt_name,
    to_comfy_sampler,
)

from cauldrond.providers.diffusers.samplers import SAMPLERS

# ComfyUI's own lists (comfy/samplers.py: SAMPLER_NAMES and SCHEDULER_NAMES), restricted to what we map to.
COMFY_SAMPLER_NAMES = {
    "euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2s_ancestral", "dpmpp_sde",
    "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde", "lcm", "deis", "ddim", "uni_pc",
}  # fmt: skip
COMFY_SCHEDULER_NAMES = {"normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta"}


def test_every_sampler_of_ours_is_mapped_or_reported() -> None:
    assert set(SAMPLER_TO_COMFY) | set(NO_COMFY_EQUIVALENT) == set(SAMPLERS)
    assert not set(SAMPLER_TO_COMFY) & set(NO_COMFY_EQUIVALENT)
    assert set(SAMPLER_TO_COMFY.values()) <= COMFY_SAMPLER_NAMES


@pytest.mark.parametrize(
    ("sampler", "schedule"),
    [(name, schedule) for name in SAMPLER_TO_COMFY for schedule in SAMPLERS[name].schedules],
)
def test_round_trip_of_every_sampler_and_schedule(sampler: str, schedule: str) -> None:
    sampler_name, scheduler = to_comfy_sampler(sampler, schedule)
    assert sampler_name in COMFY_SAMPLER_NAMES
    assert scheduler in COMFY_SCHEDULER_NAMES
    assert from_comfy_sampler(sampler_name, scheduler) == (sampler, schedule)


def test_brief_mapping() -> None:
    assert to_comfy_sampler("Euler a", "Automatic") == ("euler_ancestral", "normal")
    assert to_comfy_sampler("DPM++ 2M", "Karras") == ("dpmpp_2m", "karras")
    assert to_comfy_sampler("DPM++ 2M Karras", "Automatic") == ("dpmpp_2m", "karras")
    assert to_comfy_sampler("UniPC", "Exponential") == ("uni_pc", "exponential")


def test_plms_is_reported_not_replaced() -> None:
    with pytest.raises(ValueError, match="'PLMS' has no ComfyUI equivalent"):
        to_comfy_sampler("PLMS", "Automatic")


def test_unknown_comfy_names_are_named() -> None:
    with pytest.raises(ValueError, match="sampler_name 'dpm_fast'") as caught:
        from_comfy_sampler("dpm_fast", "sgm_uniform")
    assert "scheduler 'sgm_uniform'" in str(caught.value)
    with pytest.raises(ValueError, match="does not apply"):
        from_comfy_sampler("euler_ancestral", "karras")


@pytest.mark.parametrize(
    ("model", "ckpt"),
    [("tiny-sd", "tiny-sd.safetensors"), ("sd-v1.5", "sd-v1.5.safetensors"), ("old.ckpt", "old.ckpt")],
)
def test_checkpoint_names(model: str, ckpt: str) -> None:
    assert to_ckpt_name(model) == ckpt
    assert from_ckpt_name(ckpt) == model.removesuffix(".ckpt")


def test_checkpoint_folders_are_dropped() -> None:
    assert from_ckpt_name("SD1.5/dreamy.safetensors") == "dreamy"
    assert from_ckpt_name("SD1.5\\dreamy.ckpt") == "dreamy"
