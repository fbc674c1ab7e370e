"""Generation parameters: the one description of an image cell shared by RPC, store, engine and providers.

Each field is declared once, here, with a ``Param`` marker that says what the rest of the daemon does with it:
whether a denoising batch must share it (the queue's batch key, the provider's check), its label in A1111's
infotext (written into PNGs, read back by the importer), its export column, and its command-line option (the
client keeps a copy of that table, ``cauldron_client.generation_fields``, held equal by tests/test_params.py).
Nothing else lists the fields: a new field declared here is batched, exported, written into infotext and
imported without another edit (tests/test_params.py proves it with a field declared only in the test).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, get_origin

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_SEED = 2**32 - 1
RANDOM_SEED = -1
# After A1111's own labels (Steps ... Clip skip), before "Version": where a new field's infotext label goes.
LATE_IN_INFOTEXT = 100


class Batching(StrEnum):
    """How a field may vary inside one denoising batch."""

    PER_IMAGE = "per_image"  # each image of the batch has its own (prompts, seeds, CFG scales)
    SHARED = "shared"  # shapes the one denoising loop the batch runs: every image must have the same value
    # Shared only where the sampler's step takes it (eta: DDIM uses it, Euler ignores it). The provider checks it
    # only there; the queue's batch key, which cannot see the sampler's scheduler, always treats it as shared.
    SHARED_WHERE_USED = "shared_where_used"


@dataclass(frozen=True)
class Param:
    """What the daemon does with one field of ``GenerationParams`` (an ``Annotated`` marker)."""

    batching: Batching
    # A1111's infotext key; fields that share a label are written as one value joined by "x" ("Size: 512x768").
    infotext: str | None = None
    infotext_rank: int = LATE_IN_INFOTEXT  # where A1111 writes the key on its parameters line
    infotext_default: bool = True  # False: left out at its default, as A1111 leaves out "Clip skip: 1"
    column: str | None = None  # export column; the field's name when None
    option: str | None = None  # the client's command-line option ("--cfg"); None: no option of its own
    option_help: str = ""
    # The A1111 API's txt2img field that carries it ("sampler_name"), or "override_settings.<key>".
    a1111_api: str | None = None
    # The provider's image-info key of a short hash A1111 writes as "<label> hash" just before the label
    # ("Model hash: 1a2b3c4d5e, Model: name").
    infotext_hash: str | None = None
    # The image-info key whose text is written under the label instead of the field's value (LoRAs: their tags
    # go back into the prompt, their hashes under "Lora hashes"); such a label is not read back as the field.
    infotext_info: str | None = None


class LoraRef(BaseModel):
    """One LoRA applied to an image: a file stem in ``<models_dir>/loras/`` and its strength (A1111's
    ``<lora:name:weight>``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^<>:/\\\x00]+$")
    weight: float = Field(default=1.0, ge=-10.0, le=10.0)


class GenerationParams(BaseModel):
    """Everything that determines one image. Stored as JSON on each job and image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: Annotated[str, Param(Batching.PER_IMAGE, a1111_api="prompt")] = Field(
        max_length=4000, description="Positive prompt"
    )
    negative_prompt: Annotated[
        str, Param(Batching.PER_IMAGE, option="--negative", option_help="Negative prompt.", a1111_api="negative_prompt")
    ] = Field(default="", max_length=4000)
    model: Annotated[
        str,
        Param(
            Batching.SHARED,
            infotext="Model",
            infotext_rank=70,
            option="--model",
            option_help="Model name (see `cauldronctl models`) [default: the daemon's default_model].",
            a1111_api="override_settings.sd_model_checkpoint",
            infotext_hash="model_short_hash",
        ),
    ] = Field(default="tiny-sd", min_length=1, max_length=300, description="Model name from models.list")
    # A1111 names a VAE by its file name ("vae-ft-mse.safetensors") and leaves it out of infotext when it is the
    # model's own; switching it never reloads the model (providers/diffusers/vae.py).
    vae: Annotated[
        str,
        Param(
            Batching.SHARED,
            infotext="VAE",
            infotext_rank=75,
            infotext_default=False,
            option="--vae",
            option_help="VAE name (see `cauldronctl vaes`) [default: the model's own].",
            a1111_api="override_settings.sd_vae",
            infotext_hash="vae_short_hash",
        ),
    ] = Field(default="", max_length=300, description="VAE from vaes.list; empty: the model's own")
    # Different LoRA sets change the UNet's weights, so a batch shares one set. A1111 writes them as tags in the
    # prompt, which experiment creation takes out into this field (extra_networks.py); infotext puts the tags back
    # and adds "Lora hashes".
    loras: Annotated[
        tuple[LoraRef, ...],
        Param(
            Batching.SHARED,
            infotext="Lora hashes",
            infotext_rank=95,
            infotext_default=False,
            infotext_info="lora_hashes",
        ),
    ] = Field(default=(), max_length=16, description="LoRAs from loras.list with their weights")
    sampler: Annotated[
        str,
        Param(
            Batching.SHARED,
            infotext="Sampler",
            infotext_rank=20,
            option="--sampler",
            option_help='A1111 sampler name, e.g. "Euler a" (see `cauldronctl samplers`).',
            a1111_api="sampler_name",
        ),
    ] = Field(default="Euler a", description="A1111 sampler name from samplers.list")
    schedule: Annotated[
        str,
        Param(
            Batching.SHARED,
            infotext="Schedule type",
            infotext_rank=30,
            infotext_default=False,
            option="--schedule",
            option_help="Automatic, Karras or Exponential.",
            a1111_api="scheduler",
        ),
    ] = Field(default="Automatic", description="Schedule type: Automatic, Karras or Exponential")
    steps: Annotated[
        int, Param(Batching.SHARED, infotext="Steps", infotext_rank=10, option="--steps", a1111_api="steps")
    ] = Field(default=20, ge=1, le=500)
    cfg_scale: Annotated[
        float,
        Param(
            Batching.PER_IMAGE,
            infotext="CFG scale",
            infotext_rank=40,
            option="--cfg",
            option_help="CFG scale.",
            a1111_api="cfg_scale",
        ),
    ] = Field(default=7.0, ge=0.0, le=50.0)
    seed: Annotated[
        int,
        Param(
            Batching.PER_IMAGE,
            infotext="Seed",
            infotext_rank=50,
            option="--seed",
            option_help="-1 draws a random seed (the one used is recorded).",
            a1111_api="seed",
        ),
    ] = Field(default=RANDOM_SEED, ge=RANDOM_SEED, le=MAX_SEED, description="-1 draws a random seed")
    width: Annotated[
        int, Param(Batching.SHARED, infotext="Size", infotext_rank=60, option="--width", a1111_api="width")
    ] = Field(default=512, ge=64, le=4096)
    height: Annotated[
        int, Param(Batching.SHARED, infotext="Size", infotext_rank=60, option="--height", a1111_api="height")
    ] = Field(default=512, ge=64, le=4096)
    clip_skip: Annotated[
        int,
        Param(
            Batching.SHARED,
            infotext="Clip skip",
            infotext_rank=80,
            infotext_default=False,
            option="--clip-skip",
            a1111_api="override_settings.CLIP_stop_at_last_layers",
        ),
    ] = Field(default=1, ge=1, le=12)
    # cauldron's eta is DDIM's (the samplers whose scheduler step takes ``eta``); ancestral samplers always use 1.
    eta: Annotated[
        float,
        Param(
            Batching.SHARED_WHERE_USED,
            infotext="Eta",
            infotext_rank=90,
            infotext_default=False,
            option="--eta",
            option_help="DDIM's eta (0 deterministic, 1 as DDPM); other samplers ignore it.",
            a1111_api="eta",
        ),
    ] = Field(default=0.0, ge=0.0, le=1.0)

    @field_validator("loras", mode="before")
    @classmethod
    def _loras_from_json(cls, value: Any) -> Any:
        # JSON has lists, the frozen model holds a tuple (hashable, so a batch's shared check can compare sets).
        return tuple(value) if isinstance(value, list) else value

    @field_validator("loras")
    @classmethod
    def _one_weight_per_lora(cls, value: tuple[LoraRef, ...]) -> tuple[LoraRef, ...]:
        names = [lora.name for lora in value]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"LoRA {twice[0]!r} is given twice; give each LoRA once with one weight")
        return value

    @field_validator("vae")
    @classmethod
    def _automatic_vae(cls, value: str) -> str:
        # A1111's names for "the model's own VAE" (its sd_vae setting, and infotext that a user pastes).
        return "" if value in ("Automatic", "None") else value

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_eight(cls, value: int) -> int:
        # The VAE downsamples by 8; other sizes would be silently cropped by diffusers.
        if value % 8:
            raise ValueError(f"must be a multiple of 8, got {value}")
        return value

    def with_seed(self, seed: int) -> GenerationParams:
        return self.model_copy(update={"seed": seed})

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# The model every derivation below reads, looked up at each call: a test declares a field in a subclass and
# sets this to it, proving that nothing but the declaration is needed.
PARAMS_MODEL: type[GenerationParams] = GenerationParams


@dataclass(frozen=True)
class ParamField:
    """One field of the params model with its ``Param`` marker."""

    name: str
    type: Any  # a plain type, or tuple[Model, ...] for a list of records (loras)
    default: Any
    param: Param

    @property
    def column(self) -> str:
        return self.param.column or self.name


@dataclass(frozen=True)
class InfotextEntry:
    """One ``key: value`` of A1111's parameters line and the field(s) it holds, in A1111's order."""

    label: str
    fields: tuple[ParamField, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)

    def at_default(self, params: Mapping[str, Any]) -> bool:
        return all(params.get(field.name, field.default) == field.default for field in self.fields)

    @property
    def written_at_default(self) -> bool:
        return all(field.param.infotext_default for field in self.fields)


def param_fields() -> tuple[ParamField, ...]:
    """The fields of the params model in declaration order."""
    return _fields_of(PARAMS_MODEL)


def param_names() -> tuple[str, ...]:
    return tuple(field.name for field in param_fields())


def batch_key_fields() -> tuple[str, ...]:
    """What jobs must share to be queued into one batch: every field that is not per image."""
    return tuple(field.name for field in param_fields() if field.param.batching != Batching.PER_IMAGE)


def shared_fields(batching: Batching = Batching.SHARED) -> tuple[str, ...]:
    """The fields of one batching kind, in declaration order."""
    return tuple(field.name for field in param_fields() if field.param.batching == batching)


def export_columns() -> tuple[tuple[str, str], ...]:
    """(column, field name) for each field, in declaration order."""
    return tuple((field.column, field.name) for field in param_fields())


def infotext_entries() -> tuple[InfotextEntry, ...]:
    """A1111's ``key: value`` pairs the fields make, in A1111's order."""
    return _infotext_of(PARAMS_MODEL)


def a1111_api_fields() -> tuple[tuple[str, str], ...]:
    """(field name, A1111 API field) for each field the A1111 API carries (a1111/translate.py)."""
    return tuple((field.name, field.param.a1111_api) for field in param_fields() if field.param.a1111_api)


def cli_options() -> tuple[tuple[str, str, str, str], ...]:
    """(field, option, value type, help) for each field with an option: what ``cauldron_client.generation_fields``
    copies (the client installs without the daemon)."""
    return tuple(
        (field.name, field.param.option, field.type.__name__, field.param.option_help)
        for field in param_fields()
        if field.param.option is not None
    )


@functools.cache
def _fields_of(model: type[GenerationParams]) -> tuple[ParamField, ...]:
    fields = []
    for name, info in model.model_fields.items():
        markers = [item for item in info.metadata if isinstance(item, Param)]
        plain = isinstance(info.annotation, type) or get_origin(info.annotation) is tuple
        if len(markers) != 1 or not plain:
            raise TypeError(f"{model.__name__}.{name} needs a plain type and exactly one Param marker")
        fields.append(ParamField(name, info.annotation, info.default, markers[0]))
    return tuple(fields)


@functools.cache
def _infotext_of(model: type[GenerationParams]) -> tuple[InfotextEntry, ...]:
    by_label: dict[str, list[ParamField]] = {}
    for field in _fields_of(model):
        if field.param.infotext is not None:
            by_label.setdefault(field.param.infotext, []).append(field)
    entries = [InfotextEntry(label, tuple(fields)) for label, fields in by_label.items()]
    # sorted() is stable: labels of one rank keep declaration order.
    return tuple(sorted(entries, key=lambda entry: entry.fields[0].param.infotext_rank))
