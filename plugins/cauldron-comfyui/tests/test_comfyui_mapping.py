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

# ComfyUI's own lists, copied whole (not only the names we map to) from comfyanonymous/ComfyUI
# comfy/sampler_names.py at commit 179c2d35c84beb3d9761fcd146ffcba77273413e (older releases keep them in
# comfy/samplers.py): SAMPLER_NAMES = KSAMPLER_NAMES + ["ddim", "uni_pc", "uni_pc_bh2"], and SCHEDULER_NAMES.
COMFY_KSAMPLER_NAMES = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2", "dpm_2_ancestral",
    "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu",
    "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu",
    "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm", "ipndm_v", "deis", "res_multistep",
    "res_multistep_cfg_pp", "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "gradient_estimation",
    "gradient_estimation_cfg_pp", "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece",
]  # fmt: skip
COMFY_SAMPLER_NAMES = {*COMFY_KSAMPLER_NAMES, "ddim", "uni_pc", "uni_pc_bh2"}
COMFY_SCHEDULER_NAMES = {
    "normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta", "linear_quadratic",
    "kl_optimal",
}  # fmt: skip

# The k-diffusion function behind each A1111 sampler: AUTOMATIC1111/stable-diffusion-webui
# modules/sd_samplers_kdiffusion.py, samplers_k_diffusion (commit 7f2005127ff20170e2d92f353416c7f0705c593b), plus
# 'DPM++ 2M SDE' and 'DPM++ 3M SDE' from the same list in v1.6 and later.
A1111_K_DIFFUSION_FUNCTIONS = {
    "Euler a": "sample_euler_ancestral",
    "Euler": "sample_euler",
    "LMS": "sample_lms",
    "Heun": "sample_heun",
    "DPM2": "sample_dpm_2",
    "DPM2 a": "sample_dpm_2_ancestral",
    "DPM++ 2S a": "sample_dpmpp_2s_ancestral",
    "DPM++ 2M": "sample_dpmpp_2m",
    "DPM++ SDE": "sample_dpmpp_sde",
    "DPM++ 2M SDE": "sample_dpmpp_2m_sde",
    "DPM++ 3M SDE": "sample_dpmpp_3m_sde",
}
# Samplers outside k-diffusion, named by hand from ComfyUI's lists above: our DDIM and UniPC are its two
# non-k-diffusion samplers; DEIS and LCM are its k-diffusion "deis" and "lcm".
EXPECTED_OUTSIDE_A1111_TABLE = {"DDIM": "ddim", "UniPC": "uni_pc", "DEIS": "deis", "LCM": "lcm"}


def test_every_sampler_of_ours_is_mapped_or_reported() -> None:
    assert set(SAMPLER_TO_COMFY) | set(NO_COMFY_EQUIVALENT) == set(SAMPLERS)
    assert not set(SAMPLER_TO_COMFY) & set(NO_COMFY_EQUIVALENT)
    assert set(SAMPLER_TO_COMFY.values()) <= COMFY_SAMPLER_NAMES


@pytest.mark.parametrize("sampler", sorted(SAMPLER_TO_COMFY))
def test_each_sampler_is_the_one_comfyui_runs_for_the_same_k_diffusion_function(sampler: str) -> None:
    # ComfyUI runs sampler_name X as k-diffusion's sample_X (comfy/samplers.py, ksampler()); A1111 names the
    # k-diffusion function behind each of its samplers (modules/sd_samplers_kdiffusion.py). Neither is our table.
    if sampler in A1111_K_DIFFUSION_FUNCTIONS:
        expected = A1111_K_DIFFUSION_FUNCTIONS[sampler].removeprefix("sample_")
    else:
        expected = EXPECTED_OUTSIDE_A1111_TABLE[sampler]
    assert expected in COMFY_SAMPLER_NAMES
    assert to_comfy_sampler(sampler, "Automatic")[0] == expected
    assert from_comfy_sampler(expected, "normal")[0] == sampler


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
