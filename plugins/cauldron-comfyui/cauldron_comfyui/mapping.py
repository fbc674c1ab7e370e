"""Our sampler, schedule and model names against ComfyUI's ``sampler_name``, ``scheduler`` and ``ckpt_name``.

ComfyUI's names come from ``comfy/samplers.py`` (``KSAMPLER_NAMES + ["ddim", "uni_pc", "uni_pc_bh2"]`` and
``SCHEDULER_NAMES``). The mapping is one to one in both directions, so an export imports back to the same
params; a name without a counterpart is an error, never a silent substitute."""

from __future__ import annotations

from cauldrond.providers.diffusers.samplers import resolve_sampler

# Our A1111 sampler name -> ComfyUI sampler_name.
SAMPLER_TO_COMFY: dict[str, str] = {
    "Euler": "euler",
    "Euler a": "euler_ancestral",
    "Heun": "heun",
    "DPM2": "dpm_2",
    "DPM2 a": "dpm_2_ancestral",
    "LMS": "lms",
    "DPM++ 2M": "dpmpp_2m",
    "DPM++ 2M SDE": "dpmpp_2m_sde",
    "DPM++ 3M SDE": "dpmpp_3m_sde",
    "DPM++ SDE": "dpmpp_sde",
    "DPM++ 2S a": "dpmpp_2s_ancestral",
    "DDIM": "ddim",
    "UniPC": "uni_pc",
    "DEIS": "deis",
    "LCM": "lcm",
}

# Samplers of ours that ComfyUI lacks, with the reason shown to the user.
NO_COMFY_EQUIVALENT: dict[str, str] = {
    "PLMS": "ComfyUI has no PLMS (PNDM) sampler",
}

SCHEDULE_TO_COMFY: dict[str, str] = {
    "Automatic": "normal",
    "Karras": "karras",
    "Exponential": "exponential",
}

COMFY_TO_SAMPLER = {comfy: ours for ours, comfy in SAMPLER_TO_COMFY.items()}
COMFY_TO_SCHEDULE = {comfy: ours for ours, comfy in SCHEDULE_TO_COMFY.items()}

# Weight-file suffixes ComfyUI lists checkpoints with. Only these count as "already has an extension": our
# model names are file stems and may contain dots of their own ("sd-v1.5").
CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".sft")
DEFAULT_SUFFIX = ".safetensors"


def to_comfy_sampler(sampler: str, schedule: str) -> tuple[str, str]:
    """ComfyUI ``(sampler_name, scheduler)`` for our pair; ``ValueError`` when ComfyUI has no equivalent.

    Legacy combined names ("DPM++ 2M Karras") are accepted, as everywhere else in cauldron."""
    canonical, canonical_schedule = resolve_sampler(sampler, schedule)
    if canonical in NO_COMFY_EQUIVALENT:
        raise ValueError(
            f"sampler {canonical!r} has no ComfyUI equivalent ({NO_COMFY_EQUIVALENT[canonical]}); "
            "choose another sampler to export this image to ComfyUI"
        )
    if canonical not in SAMPLER_TO_COMFY:
        raise ValueError(f"sampler {canonical!r} has no ComfyUI equivalent known to this plugin")
    return SAMPLER_TO_COMFY[canonical], SCHEDULE_TO_COMFY[canonical_schedule]


def from_comfy_sampler(sampler_name: str, scheduler: str) -> tuple[str, str]:
    """Our ``(sampler, schedule)`` for ComfyUI's pair; ``ValueError`` naming what has no counterpart."""
    unknown = []
    if sampler_name not in COMFY_TO_SAMPLER:
        unknown.append(f"sampler_name {sampler_name!r} (mappable: {', '.join(COMFY_TO_SAMPLER)})")
    if scheduler not in COMFY_TO_SCHEDULE:
        unknown.append(f"scheduler {scheduler!r} (mappable: {', '.join(COMFY_TO_SCHEDULE)})")
    if unknown:
        raise ValueError("no cauldron equivalent for ComfyUI " + " and ".join(unknown))
    sampler, schedule = COMFY_TO_SAMPLER[sampler_name], COMFY_TO_SCHEDULE[scheduler]
    # Also refuses pairs we cannot run, e.g. euler_ancestral with karras (our ancestral samplers are Automatic).
    return resolve_sampler(sampler, schedule)


def to_ckpt_name(model: str) -> str:
    """ComfyUI's ``ckpt_name`` for a model: our name plus ``.safetensors`` unless it ends in a weight suffix."""
    return model if model.lower().endswith(CHECKPOINT_SUFFIXES) else model + DEFAULT_SUFFIX


def from_ckpt_name(ckpt_name: str) -> str:
    """Our model name for a ``ckpt_name``: the file name without folders and without its weight suffix.

    ComfyUI names checkpoints in subfolders ``"SD1.5/name.safetensors"`` (``\\`` on Windows); our models
    are named by file stem alone."""
    base = ckpt_name.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in CHECKPOINT_SUFFIXES:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base
