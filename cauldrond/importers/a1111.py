"""AUTOMATIC1111 infotext to generation params: what maps, and what cauldron cannot reproduce (named, never
dropped silently).

Input is a PNG with a ``parameters`` text chunk (A1111's own PNGs, and ours) or the infotext itself as UTF-8 text
(pasted from A1111's UI). Sampler names follow A1111: a legacy combined name such as "DPM++ 2M Karras" (A1111
before 1.9) is split into sampler "DPM++ 2M" and schedule type "Karras", the way A1111 1.9+ reads it back.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from PIL import Image, UnidentifiedImageError

from cauldrond.importers.infotext import Infotext, parse_infotext
from cauldrond.params import InfotextEntry, infotext_entries
from cauldrond.plugins.interfaces import IgnoredField, Imported
from cauldrond.sampler_names import split_sampler_name

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PARAMETERS_CHUNK = "parameters"
AUTOMATIC = "Automatic"
UNIFORM = "Uniform"
# A1111's schedule types (modules/sd_schedulers.py: labels, then names and aliases): the suffixes a legacy sampler
# name may carry. Longest first, so "SGM Uniform" wins over "Uniform".
SCHEDULE_SUFFIXES: dict[str, str] = {
    "Align Your Steps": "Align Your Steps",
    "Polyexponential": "Polyexponential",
    "SGM Uniform": "SGM Uniform",
    "SGMUniform": "SGM Uniform",
    "Exponential": "Exponential",
    "KL Optimal": "KL Optimal",
    "Automatic": "Automatic",
    "Uniform": "Uniform",
    "Karras": "Karras",
    "Normal": "Normal",
    "Simple": "Simple",
    "Beta": "Beta",
    "DDIM": "DDIM",
}
LORA_TAGS = ("<lora:", "<lyco:", "<hypernet:")

# Fields that describe the image's origin rather than how to make it: reported as notes.
INFORMATIONAL = frozenset({"Version", "User", "Model hash", "VAE hash"})
NOT_TXT2IMG = "img2img, inpainting and hires fix: cauldron runs txt2img only"
IGNORED_REASONS: dict[str, str] = {
    "Denoising strength": NOT_TXT2IMG,
    "Mask blur": NOT_TXT2IMG,
    "Masked content": NOT_TXT2IMG,
    "Inpaint area": NOT_TXT2IMG,
    "Masked area padding": NOT_TXT2IMG,
    "Conditional mask weight": NOT_TXT2IMG,
    "Image CFG scale": NOT_TXT2IMG,
    "Init image hash": NOT_TXT2IMG,
    "First pass size": NOT_TXT2IMG,
    "ENSD": "eta noise seed delta: cauldron seeds a sampler's noise from the image seed alone",
    "Lora hashes": "LoRAs are applied by the name in the prompt's <lora:...> tags; the hashes are not compared",
    "TI hashes": "embeddings are used by the name in the prompt; the hashes are not compared",
    "Eta": "ancestral eta: cauldron's ancestral samplers always use 1",
    "Hypernet": "hypernetworks are not loaded",
    "Face restoration": "no face restoration",
    "Variation seed": "no variation seeds",
    "Variation seed strength": "no variation seeds",
    "Seed resize from": "no variation seeds",
    "Tiling": "no tiling",
    "Refiner": "no refiner pass",
    "Refiner switch at": "no refiner pass",
    "Schedule max sigma": "schedules use the model's own sigma range",
    "Schedule min sigma": "schedules use the model's own sigma range",
    "Schedule rho": "schedules use the default rho",
    "Token merging ratio": "no token merging",
}
IGNORED_PREFIXES: dict[str, str] = {
    "Hires ": NOT_TXT2IMG,
    "ADetailer ": "ADetailer (an A1111 extension) is not supported",
    "ControlNet": "ControlNet is not supported",
}
NO_SUCH_SETTING = "cauldron has no such setting"


# Params whose A1111 reading is more than their label: legacy sampler names carry a schedule, and A1111's "Eta"
# is the ancestral samplers' (its DDIM eta is "Eta DDIM"); see infotext_to_params.
READ_HERE = frozenset({"sampler", "schedule", "eta"})


def mapped_entries() -> list[InfotextEntry]:
    """The infotext labels params.py declares that map straight to params (read at each call)."""
    # A label written from the provider's info (Lora hashes) is not the field's value: LoRAs come back from the
    # prompt's <lora:...> tags when the imported params make an experiment.
    return [
        entry
        for entry in infotext_entries()
        if not READ_HERE & set(entry.names) and entry.fields[0].param.infotext_info is None
    ]


def import_a1111(content: bytes, filename: str) -> Imported:
    """Params for the one image an A1111 PNG or pasted infotext describes; ``ValueError`` names what is wrong."""
    return infotext_to_params(parse_infotext(infotext_of(content)))


def infotext_of(content: bytes) -> str:
    if content.startswith(PNG_SIGNATURE):
        try:
            with Image.open(io.BytesIO(content)) as image:
                texts = {str(key): str(value) for key, value in getattr(image, "text", {}).items()}
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ValueError(f"the PNG cannot be read: {exc}") from None
        if PARAMETERS_CHUNK not in texts:
            found = ", ".join(sorted(texts)) or "none"
            raise ValueError(f"the PNG has no A1111 'parameters' text chunk (text chunks: {found})")
        return texts[PARAMETERS_CHUNK]
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("neither a PNG nor UTF-8 text (pasted A1111 infotext)") from None
    if text.lstrip().startswith(("{", "[")):
        raise ValueError("this is JSON (a ComfyUI workflow?), not A1111 infotext")
    return text


def split_sampler(sampler: str, schedule: str) -> tuple[str, str]:
    """A1111 1.9+'s reading of a sampler name: a trailing schedule type wins over the 'Schedule type' field."""
    name, suffix = split_sampler_name(sampler, SCHEDULE_SUFFIXES) or (sampler, None)
    return name, suffix or schedule


def infotext_to_params(info: Infotext) -> Imported:
    fields = dict(info.fields)
    if "Steps" not in fields:
        raise ValueError(
            "no A1111 parameters line found (the last line should read 'Steps: 20, Sampler: Euler a, CFG scale: 7, "
            "Seed: 1, Size: 512x512, ...')"
        )
    params: dict[str, Any] = {"prompt": info.prompt, "negative_prompt": info.negative_prompt}
    notes: list[str] = []
    ignored: list[IgnoredField] = []
    for entry in mapped_entries():
        if entry.label in fields:
            params.update(_entry_values(entry, fields.pop(entry.label)))
    sampler = fields.pop("Sampler", None)
    schedule = fields.pop("Schedule type", AUTOMATIC)
    if sampler is not None:
        params["sampler"], params["schedule"] = split_sampler(sampler, schedule)
        if params["schedule"] == UNIFORM:
            # Evenly spaced over the model's own timesteps: what cauldron's Automatic always means (docs/samplers.md).
            params["schedule"] = AUTOMATIC
            notes.append("A1111's Uniform schedule is cauldron's Automatic")
    else:
        notes.append("no Sampler field: the default sampler is used")
    if fields.get("Version", "").startswith("cauldron-"):
        # Our own PNGs write cauldron's eta as "Eta", and draw their noise as cauldron does.
        if "Eta" in fields:
            params["eta"] = _converted("Eta", fields.pop("Eta"), float)
    else:
        _eta(fields, params, ignored)
        _rng(fields, ignored, notes)
    if "model" not in params:
        notes.append("no Model field: the default model is used")
    if any(tag in info.prompt for tag in LORA_TAGS):
        notes.append("the prompt's <lora:...> tags become LoRAs from models/loras/ when the experiment is created")
    for key, value in fields.items():
        if key in INFORMATIONAL:
            notes.append(f"{key}: {value}")
        else:
            ignored.append(IgnoredField(key, value, ignored_reason(key)))
    ignored += [IgnoredField(part, "", "not a 'key: value' pair") for part in info.unreadable]
    return Imported(params=[params], ignored=ignored, notes=notes)


def ignored_reason(key: str) -> str:
    if key in IGNORED_REASONS:
        return IGNORED_REASONS[key]
    for prefix, reason in IGNORED_PREFIXES.items():
        if key.startswith(prefix):
            return reason
    return NO_SUCH_SETTING


def _converted(key: str, value: str, convert: Callable[[str], Any]) -> Any:
    try:
        return convert(value)
    except ValueError:
        raise ValueError(f"{key}: {value!r} is not a valid value") from None


def _entry_values(entry: InfotextEntry, value: str) -> dict[str, Any]:
    """A label's text as its fields' values; a label of several fields is "x"-joined ("Size: 512x768")."""
    parts = value.split("x") if len(entry.fields) > 1 else [value]
    if len(parts) != len(entry.fields):
        shape = "x".join(name.upper() for name in entry.names)
        raise ValueError(f"{entry.label}: {value!r} is not {shape}")
    return {
        field.name: _converted(entry.label, part.strip() if len(parts) > 1 else part, field.type)
        for field, part in zip(entry.fields, parts, strict=True)
    }


def _eta(fields: dict[str, str], params: dict[str, Any], ignored: list[IgnoredField]) -> None:
    # A1111 writes "Eta DDIM" for its DDIM-style samplers; cauldron's eta is DDIM's.
    value = fields.pop("Eta DDIM", None)
    if value is None:
        return
    if params.get("sampler") == "DDIM":
        params["eta"] = _converted("Eta DDIM", value, float)
    else:
        ignored.append(
            IgnoredField("Eta DDIM", value, f"cauldron applies eta to DDIM only, not {params.get('sampler')}")
        )


def _rng(fields: dict[str, str], ignored: list[IgnoredField], notes: list[str]) -> None:
    # cauldron draws the starting noise on the CPU, as A1111 does with "RNG: CPU"; A1111's default is the GPU.
    if "RNG" not in fields:
        notes.append("A1111 drew this image's noise on its GPU (no RNG field); the same seed gives other noise here")
        return
    value = fields.pop("RNG")
    if value != "CPU":
        ignored.append(IgnoredField("RNG", value, "cauldron draws the starting noise on the CPU (A1111's 'RNG: CPU')"))
