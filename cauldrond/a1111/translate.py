"""A txt2img request → the spec of an ``a1111`` experiment, after deciding every field: supported, refused
with a 422 that names it, or ignored where A1111 itself ignores it (the table in docs/a1111-api.md).

A refused field is refused only when it asks for something: ``enable_hr: false`` or ``restore_faces: false`` is
what every client sends, and is what cauldrond does anyway."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from cauldrond.a1111.catalogue import schedule_of
from cauldrond.a1111.errors import A1111Error, field_error
from cauldrond.a1111.schemas import TXT2IMG_DEFAULTS, Txt2ImgFields
from cauldrond.experiments.kinds import a1111_spec
from cauldrond.params import MAX_SEED, RANDOM_SEED, a1111_api_fields

Treatment = Literal["supported", "refused", "ignored"]
XYZ_SCRIPT = "x/y/z plot"


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _off(value: Any) -> bool:
    """False, 0, "None" or empty: what clients send for a feature they do not use."""
    if _empty(value) or value is False or value == "None":
        return True
    return isinstance(value, int | float) and not isinstance(value, bool) and value == 0


def _equals(expected: float) -> Callable[[Any], bool]:
    return lambda value: value is None or (isinstance(value, int | float) and float(value) == expected)


def _seed_resize_off(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and value <= 0)


@dataclass(frozen=True)
class FieldRule:
    treatment: Treatment
    why: str
    # For a refused field: the values that ask for nothing (then the field is let through).
    inactive: Callable[[Any], bool] = _off


SUPPORTED = FieldRule("supported", "")
RULES: dict[str, FieldRule] = {
    **{
        name: SUPPORTED
        for name in (
            "prompt",
            "negative_prompt",
            "seed",
            "sampler_name",
            "sampler_index",
            "scheduler",
            "steps",
            "cfg_scale",
            "width",
            "height",
            "batch_size",
            "n_iter",
            "eta",
            "override_settings",
            "send_images",
            "save_images",
            "script_name",
            "script_args",
        )
    },
    "enable_hr": FieldRule("refused", "hires fix is not supported"),
    "restore_faces": FieldRule("refused", "face restoration is not supported"),
    "tiling": FieldRule("refused", "tiling is not supported"),
    "subseed_strength": FieldRule("refused", "variation seeds are not supported", _equals(0)),
    "seed_resize_from_h": FieldRule("refused", "resizing the seed is not supported", _seed_resize_off),
    "seed_resize_from_w": FieldRule("refused", "resizing the seed is not supported", _seed_resize_off),
    "refiner_checkpoint": FieldRule("refused", "refiner models are not supported"),
    "alwayson_scripts": FieldRule("refused", "scripts and extensions are not supported"),
    "styles": FieldRule("refused", "saved styles are not supported; put the text in the prompt"),
    "firstpass_image": FieldRule("refused", "a first-pass image (hires fix) is not supported"),
    "infotext": FieldRule("refused", "parameters from infotext are not supported; send the fields"),
    "s_churn": FieldRule("refused", "sampler noise settings are not supported", _equals(0)),
    "s_noise": FieldRule("refused", "sampler noise settings are not supported", _equals(1)),
    "s_min_uncond": FieldRule("refused", "skipping the negative prompt at low sigma is not supported", _equals(0)),
    "disable_extra_networks": FieldRule(
        "refused", "keeping <lora:...> tags as plain text is not supported; remove them from the prompt"
    ),
    # A1111 reads these only when a refused feature above is on: without it they are no-ops there too.
    "subseed": FieldRule("ignored", "used only with subseed_strength > 0"),
    "s_tmin": FieldRule("ignored", "used only with s_churn > 0"),
    "s_tmax": FieldRule("ignored", "used only with s_churn > 0"),
    "refiner_switch_at": FieldRule("ignored", "used only with refiner_checkpoint"),
    "denoising_strength": FieldRule("ignored", "txt2img uses it only with enable_hr"),
    **{
        name: FieldRule("ignored", "used only with enable_hr")
        for name in (
            "firstphase_width",
            "firstphase_height",
            "hr_scale",
            "hr_upscaler",
            "hr_second_pass_steps",
            "hr_resize_x",
            "hr_resize_y",
            "hr_checkpoint_name",
            "hr_sampler_name",
            "hr_scheduler",
            "hr_prompt",
            "hr_negative_prompt",
        )
    },
    "override_settings_restore_afterwards": FieldRule(
        "ignored", "override_settings never outlive their request here (as with true, A1111's default)"
    ),
    "do_not_save_samples": FieldRule("ignored", "every image is kept in the store: the queue is durable"),
    "do_not_save_grid": FieldRule("ignored", "no grid is saved for a plain request"),
    "comments": FieldRule("ignored", "comments are not written into infotext"),
    "force_task_id": FieldRule("ignored", "progress reports on the running request, not by task id"),
}
assert set(RULES) == set(TXT2IMG_DEFAULTS), set(RULES) ^ set(TXT2IMG_DEFAULTS)

# override_settings keys applied to the request: a checkpoint, CLIP skip, and a VAE by its file name in
# <models_dir>/vae/ ("Automatic", "None" or empty: the model's own).
OVERRIDE_MODEL = "sd_model_checkpoint"
OVERRIDE_CLIP_SKIP = "CLIP_stop_at_last_layers"
OVERRIDE_VAE = "sd_vae"
OWN_VAE = ("Automatic", "None", "")
# Our error fields → the A1111 request field a client wrote (params.py declares each field's).
SPEC_FIELDS = {name: a1111 for name, a1111 in a1111_api_fields() if a1111 != name}
assert SPEC_FIELDS["model"] == f"override_settings.{OVERRIDE_MODEL}"
assert SPEC_FIELDS["clip_skip"] == f"override_settings.{OVERRIDE_CLIP_SKIP}"
assert SPEC_FIELDS["vae"] == f"override_settings.{OVERRIDE_VAE}"
# Params that plan_txt2img decides itself; every other one is the request field params.py names, as sent.
DECIDED_HERE = frozenset({"sampler", "schedule", "seed", "model", "clip_skip", "vae"})


@dataclass(frozen=True)
class Txt2ImgPlan:
    """What a request asks for, decided: the experiment's base and axes, and how to answer."""

    fields: Txt2ImgFields
    base: dict[str, Any]
    axes: dict[str, list[Any]]
    seeds: list[int]
    model_wanted: str | None  # override_settings.sd_model_checkpoint as sent, to resolve against the checkpoints
    script: str | None  # "x/y/z plot" or None

    @property
    def images(self) -> int:
        return len(self.seeds)


def check_fields(body: Mapping[str, Any], current_options: Mapping[str, Any]) -> None:
    """Refuse the first field that asks for something unsupported (A1111_Error 422 naming it)."""
    for name, value in body.items():
        rule = RULES.get(name)
        if rule is not None and rule.treatment == "refused" and not rule.inactive(value):
            raise field_error(name, f"{rule.why} (got {value!r:.80})")
    overrides = body.get("override_settings") or {}
    if not isinstance(overrides, dict):
        raise field_error("override_settings", "must be an object of option names and values")
    for key, value in overrides.items():
        if key in (OVERRIDE_MODEL, OVERRIDE_CLIP_SKIP, OVERRIDE_VAE):
            continue
        if _empty(value):
            continue  # None, "", [] and {} set nothing
        if key in current_options and current_options[key] == value:
            continue  # what the option already is: a no-op
        raise field_error(f"override_settings.{key}", f"this option cannot be overridden here (got {value!r:.80})")


def plan_txt2img(
    body: Mapping[str, Any], *, clip_skip: int, max_cells: int, current_options: Mapping[str, Any]
) -> Txt2ImgPlan:
    """Validate and translate; raises A1111Error (422 naming the field) before anything is stored."""
    check_fields(body, current_options)
    try:
        fields = Txt2ImgFields.model_validate(dict(body))
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error["loc"]) or "body"
        raise field_error(name, str(error["msg"]), kind=str(error["type"])) from exc
    script = _script_of(fields)
    count = fields.batch_size * fields.n_iter
    if count > max_cells:
        raise field_error(
            "n_iter", f"batch_size × n_iter = {count} images is over the daemon's max_cells of {max_cells}"
        )
    schedule = schedule_of(fields.scheduler)
    if schedule is None:
        raise field_error("scheduler", f"unknown scheduler {fields.scheduler!r}; see GET /sdapi/v1/schedulers")
    overrides = fields.override_settings or {}
    request_clip_skip = overrides.get(OVERRIDE_CLIP_SKIP, clip_skip)
    if isinstance(request_clip_skip, bool) or not isinstance(request_clip_skip, int | float):
        raise field_error(f"override_settings.{OVERRIDE_CLIP_SKIP}", "must be a whole number from 1 to 12")
    if float(request_clip_skip) != int(request_clip_skip):
        raise field_error(f"override_settings.{OVERRIDE_CLIP_SKIP}", "must be a whole number from 1 to 12")
    model_wanted = overrides.get(OVERRIDE_MODEL)
    if model_wanted is not None and not isinstance(model_wanted, str):
        raise field_error(f"override_settings.{OVERRIDE_MODEL}", "must be a checkpoint title or name")
    sent = {name: getattr(fields, a1111, None) for name, a1111 in a1111_api_fields() if name not in DECIDED_HERE}
    base: dict[str, Any] = {name: value for name, value in sent.items() if value is not None}  # None: not sent
    base.update(
        sampler=fields.sampler_name or fields.sampler_index or "Euler",
        schedule=schedule,
        # A1111 clamps CLIP skip to at least 1 (0 and 1 both mean "the last layer").
        clip_skip=max(1, int(request_clip_skip)),
    )
    vae = overrides.get(OVERRIDE_VAE)
    if vae is not None and not isinstance(vae, str):
        raise field_error(f"override_settings.{OVERRIDE_VAE}", "must be a VAE file name, Automatic or None")
    if vae is not None and vae not in OWN_VAE:
        base["vae"] = vae  # checked against <models_dir>/vae/ when the experiment is created
    seeds = request_seeds(fields.seed, count)
    spec_base, axes = a1111_spec(base=base, seeds=seeds)
    return Txt2ImgPlan(fields, spec_base, axes, seeds, model_wanted or None, script)


def request_seeds(seed: int, count: int) -> list[int]:
    """A1111's seeds for a request: seed, seed+1, ... (a -1 seed drawn once first). Past 2^32 - 1 they wrap, as
    A1111's own generator takes a seed modulo 2^32."""
    if seed < RANDOM_SEED:
        raise field_error("seed", f"must be -1 (random) or 0 to {MAX_SEED}, got {seed}")
    if seed > MAX_SEED:
        raise field_error("seed", f"must be -1 (random) or 0 to {MAX_SEED}, got {seed}")
    first = secrets.randbelow(MAX_SEED + 1) if seed == RANDOM_SEED else seed
    return [(first + i) % (MAX_SEED + 1) for i in range(count)]


def _script_of(fields: Txt2ImgFields) -> str | None:
    name = (fields.script_name or "").strip()
    if not name or name.lower() == "none":
        return None
    if name.lower() == XYZ_SCRIPT:
        return XYZ_SCRIPT
    raise field_error("script_name", f"only the X/Y/Z plot script is supported, got {name!r:.80}")


def spec_error_field(field: str | None) -> str:
    """The A1111 request field behind an experiment SpecError's field."""
    if field is None:
        return "body"
    return SPEC_FIELDS.get(field, field)


__all__ = ["RULES", "A1111Error", "Txt2ImgPlan", "check_fields", "plan_txt2img", "spec_error_field"]
