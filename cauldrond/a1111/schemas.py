"""Request bodies of the A1111 API, typed as A1111 types them (modules/api/models.py): pydantic in lax mode, as
FastAPI is, and unknown keys ignored, as A1111 ignores them (SillyTavern sends its own ``url`` and ``auth``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Txt2ImgFields(BaseModel):
    """The fields of a txt2img request that cauldrond acts on (translate.py has the policy for the rest)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = ""
    negative_prompt: str = ""
    seed: int = -1
    sampler_name: str | None = None
    sampler_index: str | None = None  # the pre-1.0 name of sampler_name, still accepted by A1111
    scheduler: str | None = None
    steps: int = 50
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    batch_size: int = Field(default=1, ge=1)
    n_iter: int = Field(default=1, ge=1)
    eta: float | None = None
    override_settings: dict[str, Any] | None = None
    send_images: bool = True
    save_images: bool = False
    script_name: str | None = None
    script_args: list[Any] = Field(default_factory=list)


class PngInfoRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    image: str = Field(default="", description="A PNG as base64, with or without a data: URL prefix")


# A txt2img request's fields with A1111's defaults: the ``parameters`` of a response echo these (and only
# these: a client's own keys, such as SillyTavern's ``auth``, which holds the password, are never echoed).
TXT2IMG_DEFAULTS: dict[str, Any] = {
    "prompt": "",
    "negative_prompt": "",
    "styles": None,
    "seed": -1,
    "subseed": -1,
    "subseed_strength": 0,
    "seed_resize_from_h": -1,
    "seed_resize_from_w": -1,
    "sampler_name": None,
    "scheduler": None,
    "batch_size": 1,
    "n_iter": 1,
    "steps": 50,
    "cfg_scale": 7.0,
    "width": 512,
    "height": 512,
    "restore_faces": None,
    "tiling": None,
    "do_not_save_samples": False,
    "do_not_save_grid": False,
    "eta": None,
    "denoising_strength": None,
    "s_min_uncond": None,
    "s_churn": None,
    "s_tmax": None,
    "s_tmin": None,
    "s_noise": None,
    "override_settings": None,
    "override_settings_restore_afterwards": True,
    "refiner_checkpoint": None,
    "refiner_switch_at": None,
    "disable_extra_networks": False,
    "firstpass_image": None,
    "comments": None,
    "enable_hr": False,
    "firstphase_width": 0,
    "firstphase_height": 0,
    "hr_scale": 2.0,
    "hr_upscaler": None,
    "hr_second_pass_steps": 0,  # nosec B105 - "pass" as in second pass, not a password
    "hr_resize_x": 0,
    "hr_resize_y": 0,
    "hr_checkpoint_name": None,
    "hr_sampler_name": None,
    "hr_scheduler": None,
    "hr_prompt": "",
    "hr_negative_prompt": "",
    "force_task_id": None,
    "sampler_index": "Euler",
    "script_name": None,
    "script_args": [],
    "send_images": True,
    "save_images": False,
    "alwayson_scripts": {},
    "infotext": None,
}
