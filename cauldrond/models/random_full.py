"""Full-size models with random weights, for speed and memory figures on a GPU without downloading a checkpoint.

The architecture is the real one: each component is built from the configs that ship with the daemon for loading
single-file checkpoints offline (``configs/sd1`` is SD 1.5's, ``configs/sdxl`` SDXL base 1.0's), so every layer
has the real model's shape and a denoising step costs exactly the FLOPs and memory of the real model; only the
values differ (each module's own initialisation, so activations stay finite). The tokenizers are CLIP's real
ones, built offline from the shipped BPE file (tokenizer_files.py). Images it makes are noise.

SD 1.5 is about 1.07 billion parameters (2.1 GB in float16), SDXL base about 3.5 billion (7 GB): building one
takes that much memory on the chosen device, plus the disk to save it.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from cauldrond.models import tokenizer_files
from cauldrond.models.tiny import MARKER_FILE, build_model_folder, write_json

RANDOM_MODEL_NOTE = "random weights, full-size architecture: for speed and memory benchmarks; its images are noise"
# arch -> (folder under configs/, default model name)
ARCHS: dict[str, tuple[str, str]] = {"sd15": ("sd1", "random-sd15"), "sdxl": ("sdxl", "random-sdxl")}
_SEED = 20_261_130
# Which class each component is; the tokenizers' pad tokens as the real models were trained with.
_TEXT_ENCODERS = {"text_encoder": "CLIPTextModel", "text_encoder_2": "CLIPTextModelWithProjection"}
_PAD_TOKENS = {"tokenizer": tokenizer_files.EOS_TOKEN, "tokenizer_2": "!"}


def config_folder(arch: str) -> Path:
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
    return Path(str(resources.files("cauldrond.models").joinpath("configs", ARCHS[arch][0])))


def component_config(arch: str, component: str) -> dict[str, Any]:
    """The shipped config of one component ("unet", "vae", "text_encoder", "text_encoder_2", "scheduler")."""
    name = "scheduler_config.json" if component == "scheduler" else "config.json"
    data: dict[str, Any] = json.loads((config_folder(arch) / component / name).read_text(encoding="utf-8"))
    return data


def components(arch: str) -> list[str]:
    """The components with weights, in the order they are built."""
    index = json.loads((config_folder(arch) / "model_index.json").read_text(encoding="utf-8"))
    return [name for name in ("unet", "vae", "text_encoder", "text_encoder_2") if name in index]


def build_component(arch: str, component: str) -> Any:
    """One component as a torch module with the real architecture, initialised on the current default device
    (under ``torch.device("meta")`` it allocates nothing: that is how parameters are counted cheaply)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = component_config(arch, component)
    if component == "unet":
        return UNet2DConditionModel.from_config(config)
    if component == "vae":
        return AutoencoderKL.from_config(config)
    text_config = CLIPTextConfig(**{k: v for k, v in config.items() if k not in ("architectures", "model_type")})
    if _TEXT_ENCODERS[component] == "CLIPTextModelWithProjection":
        return CLIPTextModelWithProjection(text_config)
    return CLIPTextModel(text_config)


def parameter_counts(arch: str) -> dict[str, int]:
    """Parameters per component, built on the meta device (no memory, a few seconds)."""
    import torch

    counts = {}
    with torch.device("meta"):
        for component in components(arch):
            counts[component] = sum(p.numel() for p in build_component(arch, component).parameters())
    return counts


def _writer(arch: str, device: str, dtype_name: str) -> Any:
    def write(folder: Path, name: str) -> None:
        import diffusers
        import torch

        dtype = getattr(torch, dtype_name)
        source = config_folder(arch)
        # One component at a time on ``device``, saved and freed before the next: peak memory is the UNet's.
        with torch.random.fork_rng(devices=[]):
            for offset, component in enumerate(components(arch)):
                torch.manual_seed(_SEED + offset)
                # Built in float32 (the initialisers' precision), then cast for the file.
                with torch.device(device):
                    module = build_component(arch, component)
                module.to(dtype).save_pretrained(folder / component, safe_serialization=True)
                del module
                if device == "cuda":
                    torch.cuda.empty_cache()
        (folder / "scheduler").mkdir()
        shutil.copyfile(source / "scheduler" / "scheduler_config.json", folder / "scheduler" / "scheduler_config.json")
        for tokenizer, pad in _PAD_TOKENS.items():
            if (source / tokenizer.replace("tokenizer", "text_encoder")).is_dir():
                tokenizer_files.write_clip_tokenizer(folder / tokenizer, pad_token=pad)
        index = json.loads((source / "model_index.json").read_text(encoding="utf-8"))
        write_json(folder / "model_index.json", {**index, "_diffusers_version": diffusers.__version__})
        write_json(folder / MARKER_FILE, {"name": name, "note": RANDOM_MODEL_NOTE, "arch": arch, "seed": _SEED})

    return write


def create_random_model(
    models_dir: Path,
    arch: str,
    name: str | None = None,
    *,
    device: str = "cpu",
    dtype: str = "float16",
    overwrite: bool = False,
) -> Path:
    """Write ``models_dir/name`` (default ``random-sd15`` / ``random-sdxl``), a diffusers folder with the real
    architecture and random weights saved as ``dtype``; built on ``device`` ("cuda" is much faster)."""
    config_folder(arch)  # refuses an unknown arch before anything is written
    return build_model_folder(models_dir, name or ARCHS[arch][1], _writer(arch, device, dtype), overwrite=overwrite)
