"""Export a diffusers SD 1.x folder as one checkpoint in the original LDM layout (the civitai / A1111 format).

Real users mostly hold single ``.safetensors`` checkpoints, so the single-file loading path needs a
checkpoint to test on; this writes one from any SD 1.x diffusers folder (the tiny model included). The key
mapping is the inverse of what diffusers' ``single_file_utils`` does when it loads such a file: UNet keys go
under ``model.diffusion_model.`` with the LDM block numbering, VAE keys under ``first_stage_model.`` and the
CLIP text encoder under ``cond_stage_model.transformer.text_model.``.

A single file holds weights only. To load it without a hub, diffusers needs the component configs from a
local diffusers folder (``from_single_file(path, config=<folder>, local_files_only=True)``); the convention
here is a sidecar text file ``<stem>.config`` next to the checkpoint, holding that folder's name in the models
dir.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer.text_model."
SIDECAR_SUFFIX = ".config"
# Real headers are a few hundred kB; a larger length field means the file is not safetensors at all.
_MAX_HEADER_BYTES = 100 * 1024 * 1024

_UNET_TOP_LEVEL = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_UNET_SDXL_ADDED = {"add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}
SDXL_CLIP_PREFIX = "conditioner.embedders.0.transformer.text_model."
SDXL_OPEN_CLIP_PREFIX = "conditioner.embedders.1.model."
# diffusers ResnetBlock2D part -> LDM ResBlock part
_UNET_RESNET_PARTS = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_VAE_TOP_LEVEL = {
    "encoder.conv_norm_out": "encoder.norm_out",
    "decoder.conv_norm_out": "decoder.norm_out",
}
_VAE_ATTENTION_PARTS = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}
# Tensors that only exist in memory (buffers) in some versions and carry no weights.
_SKIPPED_TEXT_KEYS = {"embeddings.position_ids"}


class UnsupportedModelError(ValueError):
    """The folder is not an SD 1.x-style pipeline this exporter knows how to lay out."""


def sidecar_config_path(checkpoint: Path) -> Path:
    """Where the name of the checkpoint's diffusers config folder is kept: ``<stem>.config`` beside it."""
    return checkpoint.with_suffix(SIDECAR_SUFFIX)


def read_sidecar_config(checkpoint: Path) -> str | None:
    """The config folder name from the checkpoint's sidecar, or None when there is no usable sidecar."""
    try:
        name = sidecar_config_path(checkpoint).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not name or "/" in name or "\\" in name or name in {".", ".."}:
        return None
    return name


class CorruptCheckpointError(ValueError):
    """The file is not a whole, well-formed safetensors checkpoint (truncated, garbage, wrong format)."""


def _read_header(path: Path) -> tuple[int, int, bytes]:
    """(file size, header length, header bytes) of a safetensors file."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise CorruptCheckpointError(f"{path}: {size} bytes, too short to be a safetensors file")
            header_len = int.from_bytes(prefix, "little")
            if header_len > min(size - 8, _MAX_HEADER_BYTES):
                raise CorruptCheckpointError(f"{path}: not safetensors, or truncated inside its header")
            return size, header_len, handle.read(header_len)
    except OSError as exc:
        raise CorruptCheckpointError(f"{path}: cannot read: {exc}") from exc


def inspect_single_file(path: Path) -> dict[str, str]:
    """Check that ``path`` is a whole safetensors file holding an SD 1.x LDM checkpoint; return its metadata.

    Only the header is read, so this is cheap enough to run before a model load, and it turns a truncated
    download or a stray file into one clear error instead of a failure deep inside diffusers."""
    size, header_len, raw = _read_header(path)
    try:
        header = json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise CorruptCheckpointError(f"{path}: safetensors header is not valid JSON") from exc
    if not isinstance(header, dict):
        raise CorruptCheckpointError(f"{path}: safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    data_end = 0
    for name, entry in header.items():
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise CorruptCheckpointError(f"{path}: tensor {name!r} has no valid data offsets")
        data_end = max(data_end, offsets[1])
    expected = 8 + header_len + data_end
    if size < expected:
        raise CorruptCheckpointError(f"{path}: truncated: {size} bytes of the {expected} its header names")
    for prefix, component in ((UNET_PREFIX, "UNet"), (VAE_PREFIX, "VAE"), (CLIP_PREFIX, "CLIP text encoder")):
        if not any(key.startswith(prefix) for key in header):
            raise CorruptCheckpointError(f"{path}: no {component} weights ({prefix}*); not SD 1.x")
    return {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}


def _load_component(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of one component folder; several files when the weights are sharded."""
    from safetensors.torch import load_file

    # Variant files (``*.fp16.safetensors``) duplicate the main weights; only the main ones are exported.
    files = sorted(p for p in folder.glob("*.safetensors") if p.name.count(".") == 1)
    if not files:
        raise UnsupportedModelError(f"no .safetensors weights in {folder}")
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        tensors.update(load_file(str(file)))
    return tensors


def _read_config(folder: Path) -> dict[str, Any]:
    data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise UnsupportedModelError(f"{folder / 'config.json'} is not a JSON object")
    return data


def _rename_all(
    tensors: Mapping[str, torch.Tensor],
    rename: Callable[[str], str | None],
    component: str,
) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        new_key = rename(key)
        if new_key is None:
            raise UnsupportedModelError(f"{component}: no LDM name for weight {key!r}; not an SD 1.x layout")
        out[new_key] = tensor
    return out


def _unet_renamer(config: Mapping[str, Any]) -> Callable[[str], str | None]:
    layers = config.get("layers_per_block")
    if not isinstance(layers, int):
        raise UnsupportedModelError("unet: layers_per_block must be one number for the LDM layout")
    for option in ("class_embed_type", "addition_embed_type", "encoder_hid_dim", "num_class_embeds"):
        if config.get(option) is not None and not (option == "addition_embed_type" and config[option] == "text_time"):
            raise UnsupportedModelError(f"unet: {option} has no SD 1.x/SDXL LDM equivalent")
    # LDM numbers the UNet's layers in one list per side: each down level holds `layers` resnet(+attention)
    # rows plus one downsampler row (but the last level); each up level holds layers + 1 rows, the upsampler
    # sharing the last row after the attention, if any.
    per_level = layers + 1
    up_has_attention = ["CrossAttn" in kind for kind in config.get("up_block_types", ())]

    def resnet(prefix: str, rest: str) -> str | None:
        part, _, leaf = rest.partition(".")
        ldm_part = _UNET_RESNET_PARTS.get(part)
        return None if ldm_part is None else f"{prefix}.{ldm_part}.{leaf}"

    def rename(key: str) -> str | None:
        head, _, leaf = key.rpartition(".")
        if head in _UNET_TOP_LEVEL:
            return f"{UNET_PREFIX}{_UNET_TOP_LEVEL[head]}.{leaf}"
        if head in _UNET_SDXL_ADDED:  # SDXL's time-id + pooled-text embedding
            return f"{UNET_PREFIX}{_UNET_SDXL_ADDED[head]}.{leaf}"
        if m := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
            row = 1 + int(m[1]) * per_level + int(m[3])
            if m[2] == "attentions":
                return f"{UNET_PREFIX}input_blocks.{row}.1.{m[4]}"
            found = resnet(f"input_blocks.{row}.0", m[4])
            return None if found is None else UNET_PREFIX + found
        if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(weight|bias)", key):
            row = 1 + int(m[1]) * per_level + layers
            return f"{UNET_PREFIX}input_blocks.{row}.0.op.{m[2]}"
        if m := re.fullmatch(r"mid_block\.resnets\.([01])\.(.+)", key):
            found = resnet(f"middle_block.{2 * int(m[1])}", m[2])
            return None if found is None else UNET_PREFIX + found
        if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
            return f"{UNET_PREFIX}middle_block.1.{m[1]}"
        if m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
            row = int(m[1]) * per_level + int(m[3])
            if m[2] == "attentions":
                return f"{UNET_PREFIX}output_blocks.{row}.1.{m[4]}"
            found = resnet(f"output_blocks.{row}.0", m[4])
            return None if found is None else UNET_PREFIX + found
        if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(weight|bias)", key):
            level = int(m[1])
            if level >= len(up_has_attention):
                return None
            row = level * per_level + layers
            slot = 2 if up_has_attention[level] else 1
            return f"{UNET_PREFIX}output_blocks.{row}.{slot}.conv.{m[2]}"
        return None

    return rename


def _vae_renamer(config: Mapping[str, Any]) -> Callable[[str], str | None]:
    levels = len(config.get("up_block_types", ()))

    def resnet_rest(rest: str) -> str:
        return "nin_shortcut" + rest[len("conv_shortcut") :] if rest.startswith("conv_shortcut") else rest

    def rename(key: str) -> str | None:
        head, _, leaf = key.rpartition(".")
        if head in _VAE_TOP_LEVEL:
            return f"{VAE_PREFIX}{_VAE_TOP_LEVEL[head]}.{leaf}"
        if re.fullmatch(r"(encoder|decoder)\.(conv_in|conv_out)|quant_conv|post_quant_conv", head):
            return VAE_PREFIX + key
        if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            return f"{VAE_PREFIX}encoder.down.{m[1]}.block.{m[2]}.{resnet_rest(m[3])}"
        if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(weight|bias)", key):
            return f"{VAE_PREFIX}encoder.down.{m[1]}.downsample.conv.{m[2]}"
        # LDM counts decoder levels from the lowest resolution up; diffusers in the order they run.
        if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            return f"{VAE_PREFIX}decoder.up.{levels - 1 - int(m[1])}.block.{m[2]}.{resnet_rest(m[3])}"
        if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(weight|bias)", key):
            return f"{VAE_PREFIX}decoder.up.{levels - 1 - int(m[1])}.upsample.conv.{m[2]}"
        if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.([01])\.(.+)", key):
            return f"{VAE_PREFIX}{m[1]}.mid.block_{int(m[2]) + 1}.{resnet_rest(m[3])}"
        if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)", key):
            part = _VAE_ATTENTION_PARTS.get(m[2])
            return None if part is None else f"{VAE_PREFIX}{m[1]}.mid.attn_1.{part}.{m[3]}"
        return None

    return rename


def _vae_to_ldm(tensors: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    out = _rename_all(tensors, _vae_renamer(config), "vae")
    for key, tensor in out.items():
        # The LDM VAE attention projects with 1x1 convolutions where diffusers uses linear layers.
        if ".mid.attn_1." in key and key.endswith(".weight") and tensor.ndim == 2:
            out[key] = tensor[:, :, None, None]
    return out


def _text_to_ldm(tensors: Mapping[str, torch.Tensor], prefix: str = CLIP_PREFIX) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        # transformers >= 5.6 saves CLIPTextModel without its `text_model.` wrapper; older versions with it.
        bare = key.removeprefix("text_model.")
        if bare in _SKIPPED_TEXT_KEYS:
            continue
        if bare.startswith("text_projection."):
            raise UnsupportedModelError("text_encoder: a projection head is not part of an SD 1.x checkpoint")
        out[prefix + bare] = tensor
    return out


def convert_to_ldm(folder: Path) -> dict[str, torch.Tensor]:
    """The folder's UNet, VAE and text encoder weights as one LDM-layout state dict (tensors unchanged)."""
    index_path = folder / "model_index.json"
    if not index_path.is_file():
        raise UnsupportedModelError(f"{folder} is not a diffusers pipeline folder (no model_index.json)")
    index = json.loads(index_path.read_text(encoding="utf-8"))
    sdxl = index.get("_class_name") == "StableDiffusionXLPipeline"
    if index.get("text_encoder", [None, None])[1] != "CLIPTextModel" or ("text_encoder_2" in index) != sdxl:
        raise UnsupportedModelError(f"{folder}: only SD 1.x (one CLIPTextModel) and SDXL pipelines can be exported")
    unet_config = _read_config(folder / "unet")
    state = _rename_all(_load_component(folder / "unet"), _unet_renamer(unet_config), "unet")
    state.update(_vae_to_ldm(_load_component(folder / "vae"), _read_config(folder / "vae")))
    if not sdxl:
        state.update(_text_to_ldm(_load_component(folder / "text_encoder")))
        return state
    from cauldrond.models.open_clip_layout import OpenClipLayoutError, to_open_clip

    state.update(_text_to_ldm(_load_component(folder / "text_encoder"), SDXL_CLIP_PREFIX))
    try:
        state.update(to_open_clip(_load_component(folder / "text_encoder_2"), SDXL_OPEN_CLIP_PREFIX))
    except OpenClipLayoutError as exc:
        raise UnsupportedModelError(str(exc)) from exc
    return state


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if os.name == "posix":  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def export_single_file(folder: Path, out_file: Path) -> Path:
    """Write ``folder``'s weights as one LDM-layout ``.safetensors`` at ``out_file`` and return its path.

    Also writes the sidecar ``<stem>.config`` naming ``folder`` (by its name: the checkpoint and the folder
    are expected to live in the same models dir). Both files appear whole or not at all."""
    from safetensors.torch import save_file

    from cauldrond.models.tiny import TINY_MODEL_NOTE, is_tiny_model

    if out_file.suffix != ".safetensors":
        raise ValueError(f"{out_file}: a single-file checkpoint must end in .safetensors")
    state = {key: tensor.contiguous() for key, tensor in convert_to_ldm(folder).items()}
    metadata = {"format": "pt", "cauldron.config": folder.name}
    if is_tiny_model(folder):
        metadata["cauldron.note"] = TINY_MODEL_NOTE
    out_file.parent.mkdir(parents=True, exist_ok=True)
    # Sidecar first: a sidecar without its checkpoint is harmless, a checkpoint without one cannot be loaded.
    _atomic_write(sidecar_config_path(out_file), lambda tmp: _write_text(tmp, folder.name))
    _atomic_write(out_file, lambda tmp: save_file(state, str(tmp), metadata=metadata))
    return out_file
