"""What a model expects of the LoRAs, VAEs and embeddings used with it, read from configs and headers only.

A LoRA adds weights to named layers of the UNet and text encoders, so it fits only a model with those layers at
those widths; a VAE must make latents with the model's number of channels; an embedding's vectors must be as wide
as each text encoder's. ``ModelShape`` holds those facts: from a diffusers folder's component configs, or from a
single ``.safetensors`` checkpoint's tensor shapes (its header, never its tensors) plus the UNet config it loads
with (its ``.config`` sidecar's folder or architecture, else the shipped config of the architecture its tensor
names show, models/checkpoint_arch.py). Reading one costs a few small files, and each is remembered per file
version (path, size, mtime).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from cauldrond.models.checkpoint_arch import (
    ARCHES,
    SD1,
    SDXL,
    UnrecognisedCheckpointError,
    architecture_of,
    read_tensor_index,
)
from cauldrond.models.single_file import read_sidecar_config

# A layer that can hold attention, in diffusers' names ("down_blocks", 1, 0) or the original (SGM/LDM) names
# kohya's SDXL LoRAs use ("input_blocks", 4); the value is its number of transformer blocks.
Site = tuple[str | int, ...]
FAMILY_BY_CROSS_WIDTH = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL"}

_TEXT_EMBEDDINGS = {  # single-file tensor holding each text encoder's token embeddings, per architecture
    SD1: ("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",),
    "sd2": ("cond_stage_model.model.token_embedding.weight",),
    "sd2-v": ("cond_stage_model.model.token_embedding.weight",),
    SDXL: (
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
        "conditioner.embedders.1.model.token_embedding.weight",
    ),
}


@dataclass(frozen=True)
class ModelShape:
    """A model's layer widths and attention layers, as far as they were readable (None: unknown, not checked)."""

    model: str
    text_widths: tuple[int, ...]  # one per text encoder, in order (CLIP-L, then SDXL's OpenCLIP-G)
    cross_attention_dim: int | None
    latent_channels: int | None
    vae_levels: int | None  # the VAE encoder's down blocks
    attention_sites: Mapping[Site, int] | None

    def describe(self) -> str:
        """The model and its family as a user would name it: ``tiny-sd (SD 1.x-like, one text encoder)``."""
        family = FAMILY_BY_CROSS_WIDTH.get(self.cross_attention_dim or 0)
        if family is None:
            family = "SDXL-like" if len(self.text_widths) == 2 else "SD 1.x/2.x-like"
        encoders = "two text encoders" if len(self.text_widths) == 2 else "one text encoder"
        return f"{self.model} ({family}, {encoders})"


def attention_sites(unet_config: Mapping[str, Any]) -> dict[Site, int]:
    """Every attention layer of a UNet2DConditionModel config in both naming schemes, with its depth."""
    down_types = list(unet_config.get("down_block_types") or [])
    up_types = list(unet_config.get("up_block_types") or [])
    layers = int(unet_config.get("layers_per_block", 2))
    depths = unet_config.get("transformer_layers_per_block", 1)
    down_depths = [int(d) for d in depths] if isinstance(depths, list | tuple) else [int(depths)] * len(down_types)
    up_depths = list(reversed(down_depths))  # diffusers' default for the up blocks
    sites: dict[Site, int] = {}
    for i, kind in enumerate(down_types):
        if "CrossAttn" in str(kind):
            for j in range(layers):
                sites[("down_blocks", i, j)] = sites[("input_blocks", 1 + i * (layers + 1) + j)] = down_depths[i]
    for i, kind in enumerate(up_types):
        if "CrossAttn" in str(kind):
            for j in range(layers + 1):
                sites[("up_blocks", i, j)] = sites[("output_blocks", i * (layers + 1) + j)] = up_depths[i]
    if "CrossAttn" in str(unet_config.get("mid_block_type") or "UNetMidBlock2DCrossAttn"):
        sites[("mid_block", 0)] = sites[("middle_block",)] = down_depths[-1] if down_depths else 1
    return sites


_lock = threading.Lock()
_shapes: dict[tuple[str, tuple[int, ...]], ModelShape | None] = {}
_MAX_REMEMBERED = 256


def model_shape(name: str, path: Path, models_dir: Path) -> ModelShape | None:
    """The shape of the model ``name`` stored at ``path`` (a diffusers folder or a single file); None when it
    cannot be read without loading it (a pickle, an unrecognised file: loading it then gives the error)."""
    key = (str(path.resolve()), _version(path))
    with _lock:
        if key in _shapes:
            return _shapes[key]
    shape = _read_folder(name, path) if path.is_dir() else _read_single_file(name, path, models_dir)
    with _lock:
        if len(_shapes) >= _MAX_REMEMBERED:
            _shapes.pop(next(iter(_shapes)))
        _shapes[key] = shape
    return shape


def _version(path: Path) -> tuple[int, ...]:
    # A folder's shape lives in its component configs (and a single file's in itself and its sidecar).
    files = [path / part / "config.json" for part in ("unet", "text_encoder", "text_encoder_2", "vae")]
    if not path.is_dir():
        files = [path, path.with_suffix(".config")]
    version: list[int] = []
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            version += [-1, -1]
            continue
        version += [stat.st_size, stat.st_mtime_ns]
    return tuple(version)


def _read_folder(name: str, folder: Path) -> ModelShape:
    unet = _json(folder / "unet" / "config.json")
    vae = _json(folder / "vae" / "config.json")
    widths = [_json(folder / part / "config.json").get("hidden_size") for part in ("text_encoder", "text_encoder_2")]
    cross = unet.get("cross_attention_dim")
    return ModelShape(
        model=name,
        text_widths=tuple(int(width) for width in widths if isinstance(width, int)),
        cross_attention_dim=int(cross) if isinstance(cross, int) else None,
        latent_channels=_int_or_none(vae.get("latent_channels")),
        vae_levels=len(vae["block_out_channels"]) if isinstance(vae.get("block_out_channels"), list) else None,
        attention_sites=attention_sites(unet) if unet else None,
    )


def _read_single_file(name: str, path: Path, models_dir: Path) -> ModelShape | None:
    if path.suffix.lower() != ".safetensors":
        return None  # a pickle's tensors are not read without unpickling it
    try:
        tensors, _ = read_tensor_index(path)
        arch = architecture_of(path.name, tensors)
    except UnrecognisedCheckpointError:
        return None
    sidecar = read_sidecar_config(path)
    if sidecar is not None and sidecar not in ARCHES:
        unet = _json(models_dir / sidecar / "unet" / "config.json")  # a diffusers folder beside it
    else:
        arch = sidecar or arch
        unet = _shipped_unet_config(arch)
    widths = [_shape(tensors, key, 1) for key in _TEXT_EMBEDDINGS.get(arch, ())]
    cross = next(
        (_shape(tensors, key, 1) for key in tensors if key.startswith("model.") and key.endswith("attn2.to_k.weight")),
        None,
    )
    conv_out = _shape(tensors, "first_stage_model.encoder.conv_out.weight", 0)
    levels = {key.split(".")[3] for key in tensors if key.startswith("first_stage_model.encoder.down.")}
    return ModelShape(
        model=name,
        text_widths=tuple(width for width in widths if width is not None),
        cross_attention_dim=cross,
        latent_channels=conv_out // 2 if conv_out is not None else None,
        vae_levels=len(levels) or None,
        attention_sites=attention_sites(unet) if unet else None,
    )


def _shipped_unet_config(arch: str) -> dict[str, Any]:
    if arch not in ARCHES:
        return {}
    text = resources.files("cauldrond.models").joinpath("configs", arch, "unet", "config.json").read_text()
    data = json.loads(text)
    return data if isinstance(data, dict) else {}


def _shape(tensors: Mapping[str, Any], key: str, axis: int) -> int | None:
    entry = tensors.get(key)
    shape = entry.get("shape") if isinstance(entry, dict) else None
    if isinstance(shape, list) and len(shape) > axis and isinstance(shape[axis], int):
        return int(shape[axis])
    return None


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int) else None
