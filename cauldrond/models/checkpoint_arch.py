"""What a single-file (LDM layout) checkpoint is, from its tensor names, and the diffusers configs to load it with.

A civitai-style ``.safetensors`` holds weights only; diffusers also needs each component's config (layer
counts, widths) and the tokenizers, which it would fetch from the hub. The configs of the public base models
ship with the daemon (``configs/<arch>/``, written from the published diffusers configs) and the CLIP
tokenizers are built from the shipped BPE file (tokenizer_files.py), so such a checkpoint loads offline.

Which base model a checkpoint fine-tunes shows in its tensor names: SDXL keeps its two text encoders under
``conditioner.embedders.0/1``, SD 2.x its OpenCLIP encoder under ``cond_stage_model.model``, SD 1.x its CLIP
under ``cond_stage_model.transformer``. Whether an SD 2.x model predicts noise (epsilon) or velocity
(v-prediction) is not in the names; a ``v_pred`` marker tensor (written by some trainers) says v, otherwise
epsilon is assumed, and the ``.config`` sidecar can name ``sd2-v`` (or any other architecture) to override.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from cauldrond.models import tokenizer_files

SD1, SD2, SD2_V, SDXL = "sd1", "sd2", "sd2-v", "sdxl"
ARCHES = (SD1, SD2, SD2_V, SDXL)
PIPELINE_CLASSES = {SD1: "StableDiffusionPipeline", SD2: "StableDiffusionPipeline", SD2_V: "StableDiffusionPipeline"}
PIPELINE_CLASSES[SDXL] = "StableDiffusionXLPipeline"
# tokenizer folder -> pad token (see tokenizer_files.write_clip_tokenizer)
_TOKENIZERS: dict[str, dict[str, str]] = {
    SD1: {"tokenizer": tokenizer_files.EOS_TOKEN},
    SD2: {"tokenizer": "!"},
    SD2_V: {"tokenizer": "!"},
    SDXL: {"tokenizer": tokenizer_files.EOS_TOKEN, "tokenizer_2": "!"},
}
CONFIG_CACHE_DIR = ".cauldron-configs"  # hidden: discovery skips dot names
_CONFIG_VERSION = 1  # bump when a shipped config changes, so stale copies are rebuilt
_MAX_HEADER_BYTES = 100 * 1024 * 1024

_UNET = "model.diffusion_model."
_VAE = "first_stage_model."
_SDXL_ENCODERS = "conditioner.embedders.1."
_SDXL_REFINER_ENCODER = "conditioner.embedders.0.model."
_SD2_ENCODER = "cond_stage_model.model."
_SD1_ENCODER = "cond_stage_model.transformer."


class UnrecognisedCheckpointError(ValueError):
    """The file is not a whole safetensors checkpoint of an architecture the daemon can load; says which file
    and what was missing or unexpected."""


def read_tensor_index(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(tensor name -> header entry, ``__metadata__``) of a safetensors file, after checking that the file is
    as long as its header says (a truncated download fails here, not deep inside a load)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise UnrecognisedCheckpointError(f"{path.name}: {size} bytes, too short to be a safetensors file")
            length = int.from_bytes(prefix, "little")
            if length > min(size - 8, _MAX_HEADER_BYTES):
                raise UnrecognisedCheckpointError(f"{path.name}: not safetensors, or truncated inside its header")
            raw = handle.read(length)
    except OSError as exc:
        raise UnrecognisedCheckpointError(f"{path.name}: cannot read: {exc.strerror or exc}") from exc
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise UnrecognisedCheckpointError(f"{path.name}: safetensors header is not valid JSON") from exc
    if not isinstance(header, dict):
        raise UnrecognisedCheckpointError(f"{path.name}: safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    data_end = 0
    for name, entry in header.items():
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise UnrecognisedCheckpointError(f"{path.name}: tensor {name!r} has no valid data offsets")
        data_end = max(data_end, offsets[1])
    expected = 8 + length + data_end
    if size < expected:
        raise UnrecognisedCheckpointError(f"{path.name}: truncated: {size} bytes of the {expected} its header names")
    meta = {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}
    return header, meta


def detect_architecture(path: Path) -> str:
    """SD1, SD2, SD2_V or SDXL for an LDM-layout safetensors checkpoint; UnrecognisedCheckpointError otherwise."""
    tensors, _ = read_tensor_index(path)
    return architecture_of(path.name, tensors)


def architecture_of(name: str, tensors: Mapping[str, Any]) -> str:
    """The architecture a checkpoint called ``name`` with these tensor names (header entries) has."""

    def has(prefix: str) -> bool:
        return any(key.startswith(prefix) for key in tensors)

    missing = [part for prefix, part in ((_UNET, "UNet"), (_VAE, "VAE")) if not has(prefix)]
    if missing:
        found = sorted({key.split(".", 1)[0] for key in tensors})[:8]
        raise UnrecognisedCheckpointError(
            f"{name}: no {' or '.join(missing)} weights ({_UNET}* / {_VAE}*); not a Stable Diffusion checkpoint "
            f"in the original layout (its tensors start with: {', '.join(found) or 'nothing'})"
        )
    conv_in = tensors.get(f"{_UNET}input_blocks.0.0.weight")
    shape = conv_in.get("shape") if isinstance(conv_in, dict) else None
    if isinstance(shape, list) and len(shape) == 4 and shape[1] != 4:
        raise UnrecognisedCheckpointError(
            f"{name}: its UNet takes {shape[1]} input channels (an inpainting or other special model); "
            "only text-to-image checkpoints (4 channels) are supported"
        )
    v_prediction = "v_pred" in tensors
    if has(_SDXL_ENCODERS):
        if v_prediction:
            raise UnrecognisedCheckpointError(f"{name}: an SDXL v-prediction checkpoint; not supported yet")
        return SDXL
    if has(_SDXL_REFINER_ENCODER):
        raise UnrecognisedCheckpointError(
            f"{name}: an SDXL refiner (one OpenCLIP encoder under conditioner.embedders.0); only base models load"
        )
    if has(_SD2_ENCODER):
        return SD2_V if v_prediction else SD2
    if has(_SD1_ENCODER):
        return SD1
    raise UnrecognisedCheckpointError(
        f"{name}: no text encoder this daemon recognises ({_SD1_ENCODER}* for SD 1.x, {_SD2_ENCODER}* for "
        f"SD 2.x, {_SDXL_ENCODERS}* for SDXL)"
    )


def config_folder(arch: str, cache_root: Path) -> Path:
    """A diffusers config folder for ``arch`` (configs and tokenizers, no weights) under ``cache_root``,
    written on first use from the package data and reused after."""
    if arch not in ARCHES:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHES)}")
    target = cache_root / f"{arch}-v{_CONFIG_VERSION}"
    if (target / "model_index.json").is_file():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{arch}.", suffix=".building", dir=cache_root))
    try:
        _copy_tree(resources.files("cauldrond.models").joinpath("configs", arch), build)
        for folder, pad_token in _TOKENIZERS[arch].items():
            tokenizer_files.write_clip_tokenizer(build / folder, pad_token)
        try:
            os.replace(build, target)
        except OSError:
            if not (target / "model_index.json").is_file():  # not another process finishing first
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return target


def _copy_tree(source: Traversable, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.is_dir():
            _copy_tree(entry, destination / entry.name)
        else:
            (destination / entry.name).write_bytes(entry.read_bytes())
