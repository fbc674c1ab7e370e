"""The built-in offline model: a tiny Stable Diffusion 1.x pipeline with random weights.

No machine the project runs on may reach a model hub, yet every part from the provider to the grids must run
on real diffusers. So the daemon writes its own model: the real SD 1.x layout (UNet2DConditionModel with cross
attention, a four-level AutoencoderKL so the VAE scale factor is 8, a CLIP text encoder and tokenizer, a PNDM
scheduler with the SD 1.x betas), shrunk until building it takes a moment and a 64x64 image a fraction of a
second on a CPU. It is saved as an ordinary diffusers folder and loaded through the same code path as a real
checkpoint. Its weights are random, so it draws noise patterns; the marker file says so.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cauldrond.models import tokenizer_files

TINY_MODEL_NOTE = "random weights: its images are noise patterns, for tests and demos"
MARKER_FILE = "CAULDRON_MODEL.json"
DEFAULT_NAME = "tiny-sd"
# Bumped when the architecture or the weights change, so a stored image can tell which tiny model made it.
TINY_MODEL_VERSION = 1
_SEED = 1_234_567

TEXT_HIDDEN_SIZE = 32

# SD 1.x shapes scaled down: three UNet levels (cross attention in all but the last, as SD 1.x does), four VAE
# levels because the number of VAE levels is what fixes the 8x latent downscale.
UNET_CONFIG: dict[str, Any] = {
    "sample_size": 8,  # latent size, so an image with no width/height given is 64x64
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "block_out_channels": (32, 64, 64),
    "layers_per_block": 2,
    "attention_head_dim": 4,
    "cross_attention_dim": TEXT_HIDDEN_SIZE,
    "norm_num_groups": 32,
}

VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (32, 32, 64, 64),
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 64,
    "scaling_factor": 0.18215,
}

# The scheduler_config.json of SD 1.5, unchanged: samplers built from it behave as on a real SD 1.x model.
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "skip_prk_steps": True,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
}


def _text_encoder_config() -> dict[str, Any]:
    bos_id, eos_id = tokenizer_files.special_token_ids()
    return {
        "vocab_size": tokenizer_files.vocab_size(),
        "hidden_size": TEXT_HIDDEN_SIZE,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": tokenizer_files.MODEL_MAX_LENGTH,
        "projection_dim": TEXT_HIDDEN_SIZE,
        "hidden_act": "quick_gelu",
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "pad_token_id": eos_id,
    }


def _model_index() -> dict[str, Any]:
    import diffusers

    return {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _write_model(folder: Path, name: str) -> None:
    """Write every file of the pipeline into ``folder`` (which exists and is empty)."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    # The caller's global RNG is left as it was: the daemon may be seeding its own generators around us.
    with torch.random.fork_rng(devices=[]):
        # One seed per component, so a change to one part leaves the others' weights as they were.
        torch.manual_seed(_SEED)
        text_encoder = CLIPTextModel(CLIPTextConfig(**_text_encoder_config()))
        torch.manual_seed(_SEED + 1)
        unet = UNet2DConditionModel(**UNET_CONFIG)
        torch.manual_seed(_SEED + 2)
        vae = AutoencoderKL(**VAE_CONFIG)

    text_encoder.save_pretrained(folder / "text_encoder", safe_serialization=True)
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    vae.save_pretrained(folder / "vae", safe_serialization=True)
    PNDMScheduler(**SCHEDULER_CONFIG).save_pretrained(folder / "scheduler")
    tokenizer_files.write_tokenizer_files(folder / "tokenizer")
    write_json(folder / "model_index.json", _model_index())
    write_json(
        folder / MARKER_FILE,
        {"name": name, "note": TINY_MODEL_NOTE, "version": TINY_MODEL_VERSION, "seed": _SEED},
    )


def _check_name(name: str) -> None:
    if not name or name in {".", ".."} or name.startswith(".") or "/" in name or os.sep in name:
        raise ValueError(f"invalid model name {name!r}: it must be a plain folder name")


def create_tiny_model(models_dir: Path, name: str = DEFAULT_NAME, *, overwrite: bool = False) -> Path:
    """Create the tiny model as the diffusers folder ``models_dir/name`` and return its path.

    An existing folder is returned untouched unless ``overwrite``; then it is rebuilt beside it and swapped
    in, so a reader never sees a half-written model. The weights are the same on every call and on every
    machine that runs the same torch version."""
    return build_model_folder(models_dir, name, _write_model, overwrite=overwrite)


def build_model_folder(
    models_dir: Path, name: str, write: Callable[[Path, str], None], *, overwrite: bool = False
) -> Path:
    """Run ``write(folder, name)`` on a hidden folder beside ``models_dir/name`` and swap it in whole."""
    _check_name(name)
    target = models_dir / name
    if target.exists() and not overwrite:
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    # A dot name keeps the half-built folder out of model listings; same parent so the rename is atomic.
    build = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".building", dir=models_dir))
    try:
        write(build, name)
        _fsync_tree(build)
        _swap_in(build, target, overwrite=overwrite)
        _fsync_path(models_dir)
    finally:
        if build.exists():
            shutil.rmtree(build, ignore_errors=True)
    return target


def _fsync_path(path: Path) -> None:
    if os.name != "posix" and path.is_dir():
        return  # directories cannot be opened for fsync outside POSIX
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root``: after a crash the model is either whole or absent."""
    for path in sorted(root.rglob("*"), reverse=True):
        _fsync_path(path)
    _fsync_path(root)


def _swap_in(build: Path, target: Path, *, overwrite: bool) -> None:
    if not target.exists():
        try:
            build.rename(target)
            return
        except OSError:
            # Another process finished the same model first (rename onto a non-empty folder fails).
            if not overwrite and target.exists():
                return
            raise
    if not overwrite:
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    retired.rmdir()
    target.rename(retired)
    try:
        build.rename(target)
    except OSError:
        retired.rename(target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The folder's CAULDRON_MODEL.json, or None when it has none (or an unreadable one)."""
    try:
        data = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_tiny_model(folder: Path) -> bool:
    """True when ``folder`` was written by :func:`create_tiny_model` (its marker says so)."""
    marker = read_marker(folder)
    return marker is not None and marker.get("note") == TINY_MODEL_NOTE
