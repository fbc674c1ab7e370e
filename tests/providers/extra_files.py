"""Tiny LoRA, VAE and embedding files for the tiny models, made the way their owners' tools write them.

A LoRA: peft adapters on the UNet's attention projections with random (not zero) weights, saved by diffusers'
``save_lora_weights`` (diffusers' layout; A1111/kohya files are converted by the same loader). A VAE: the model's
own VAE config with fresh random weights, saved as one safetensors file in diffusers' layout. An embedding:
random vectors of the text encoder's width in A1111's ``{"emb_params": tensor}`` format (SDXL: ``{"clip_l",
"clip_g"}``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file


def load_tiny(model_dir: Path) -> Any:
    import diffusers

    return diffusers.DiffusionPipeline.from_pretrained(str(model_dir), local_files_only=True, use_safetensors=True)


def write_lora(pipeline: Any, path: Path, *, seed: int = 1, rank: int = 4) -> Path:
    """A random LoRA on ``pipeline``'s UNet attention projections, saved as ``path`` (a .safetensors)."""
    from peft import LoraConfig, get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = pipeline.unet
    config = LoraConfig(
        r=rank, lora_alpha=rank, init_lora_weights=False, target_modules=["to_q", "to_k", "to_v", "to_out.0"]
    )
    unet.add_adapter(config, adapter_name="made")
    with torch.no_grad():
        for name, parameter in unet.named_parameters():
            if "lora_" in name:
                parameter.normal_(0.0, 0.5)  # strong enough to change a 2-step 64x64 image visibly
    layers = get_peft_model_state_dict(unet, adapter_name="made")
    unet.delete_adapters("made")
    path.parent.mkdir(parents=True, exist_ok=True)
    type(pipeline).save_lora_weights(
        str(path.parent), unet_lora_layers=layers, weight_name=path.name, safe_serialization=True
    )
    return path


def write_vae(pipeline: Any, path: Path, *, seed: int = 2, latent_channels: int | None = None) -> Path:
    """A VAE of ``pipeline``'s VAE config (or another number of latent channels) with fresh random weights."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    config = dict(pipeline.vae.config)
    if latent_channels is not None:
        config["latent_channels"] = latent_channels
    vae = AutoencoderKL.from_config(config)
    state = {key: value.contiguous() for key, value in vae.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path


def write_embedding(pipeline: Any, path: Path, *, seed: int = 3, vectors: int = 2, width: int | None = None) -> Path:
    """A random textual-inversion embedding of ``vectors`` vectors in A1111's safetensors format."""
    torch.manual_seed(seed)
    encoder_2 = getattr(pipeline, "text_encoder_2", None)
    if encoder_2 is not None:
        state = {
            "clip_l": torch.randn(vectors, width or _width(pipeline.text_encoder)),
            "clip_g": torch.randn(vectors, width or _width(encoder_2)),
        }
    else:
        state = {"emb_params": torch.randn(vectors, width or _width(pipeline.text_encoder))}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path


def _width(encoder: Any) -> int:
    return int(encoder.get_input_embeddings().weight.shape[1])


def write_pickle_as_safetensors(path: Path) -> Path:
    """A torch.save pickle under a .safetensors name (what a careless rename or a hostile upload gives)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"emb_params": torch.zeros(1, 4)}, str(path))
    return path


def write_truncated_copy(source: Path, path: Path) -> Path:
    """``source`` cut in the middle of its tensor data (a download that stopped)."""
    data = source.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) - max(16, (len(data) - 8) // 3)])
    return path


def write_garbled(path: Path) -> Path:
    """A safetensors header length pointing past the file, then junk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((64).to_bytes(8, "little") + json.dumps({"x": 1}).encode() + b"junk")
    return path


def write_text_encoder_lora(model_dir: Path, path: Path, *, seed: int = 4, rank: int = 4) -> Path:
    """A random LoRA on the text encoder's attention only (kohya trains one by default): it changes what prompts
    encode to. Made with peft directly on a fresh copy of the model."""
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model

    pipeline = load_tiny(model_dir)
    torch.manual_seed(seed)
    encoder = pipeline.text_encoder
    config = LoraConfig(
        r=rank, lora_alpha=rank, init_lora_weights=False, target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]
    )
    inject_adapter_in_model(config, encoder, adapter_name="made")
    with torch.no_grad():
        for name, parameter in encoder.named_parameters():
            if "lora_" in name:
                parameter.normal_(0.0, 0.5)
    layers = get_peft_model_state_dict(encoder, adapter_name="made")
    path.parent.mkdir(parents=True, exist_ok=True)
    type(pipeline).save_lora_weights(
        str(path.parent), text_encoder_lora_layers=layers, weight_name=path.name, safe_serialization=True
    )
    return path


def write_vae_layouts(model_dir: Path, vae_dir: Path, *, seed: int = 6) -> tuple[str, str, str]:
    """One random VAE of the model's VAE config written three ways: a diffusers-layout file, a diffusers folder, and
    an LDM-layout file cut from a whole LDM checkpoint (``first_stage_model.*``, as A1111 VAEs are made), converted
    by the project's own single-file exporter. Returns their VAE names."""
    import shutil
    import tempfile

    from diffusers import AutoencoderKL

    from cauldrond.models.single_file import convert_to_ldm

    torch.manual_seed(seed)
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(str(model_dir / "vae")))
    vae_dir.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in vae.state_dict().items()}, str(vae_dir / "same.safetensors"))
    vae.save_pretrained(str(vae_dir / "same-folder"), safe_serialization=True)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "model"
        shutil.copytree(model_dir, copy)
        shutil.rmtree(copy / "vae")
        vae.save_pretrained(str(copy / "vae"), safe_serialization=True)
        ldm = {key: value for key, value in convert_to_ldm(copy).items() if key.startswith("first_stage_model.")}
    save_file({key: value.contiguous() for key, value in ldm.items()}, str(vae_dir / "same-ldm.safetensors"))
    return "same.safetensors", "same-folder", "same-ldm.safetensors"
