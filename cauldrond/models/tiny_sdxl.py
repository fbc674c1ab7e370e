"""The built-in offline SDXL model: tiny-sd's idea with SDXL's real layout, so SDXL code paths run in tests.

The layout is SDXL base's: a UNet conditioned on the time ids and the pooled text embedding
(``addition_embed_type="text_time"``), three UNet levels with cross attention in the lower two only, two text
encoders (a ``CLIPTextModel`` and a ``CLIPTextModelWithProjection`` whose hidden states are concatenated for
cross attention, the second one's projected output being the pooled embedding), two tokenizers, an
``AutoencoderKL`` with SDXL's scaling factor, and an Euler scheduler with SDXL's betas. Every width is shrunk
so that a 64x64 image takes a fraction of a second on a CPU; the weights are random.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cauldrond.models import tokenizer_files
from cauldrond.models.tiny import MARKER_FILE, TINY_MODEL_NOTE, VAE_CONFIG, build_model_folder, write_json

DEFAULT_NAME = "tiny-sdxl"
TINY_SDXL_VERSION = 1
_SEED = 7_654_321

TEXT_HIDDEN_SIZE = 32  # SDXL base: 768
# Wider than the first, as in SDXL base (1280): diffusers' single-file loader tells the encoders apart by width.
TEXT_2_HIDDEN_SIZE = 48
POOLED_SIZE = 32  # text_encoder_2's projection; SDXL base: 1280
TIME_EMBED_DIM = 8  # per time id; SDXL base: 256

UNET_CONFIG: dict[str, Any] = {
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "block_out_channels": (32, 64, 64),
    "layers_per_block": 2,
    "transformer_layers_per_block": (1, 1, 2),  # SDXL base: (1, 2, 10)
    "attention_head_dim": (2, 4, 4),
    "use_linear_projection": True,
    "cross_attention_dim": TEXT_HIDDEN_SIZE + TEXT_2_HIDDEN_SIZE,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": TIME_EMBED_DIM,
    # six time ids (original size, crop corner, target size), each embedded, then the pooled text embedding
    "projection_class_embeddings_input_dim": 6 * TIME_EMBED_DIM + POOLED_SIZE,
    "norm_num_groups": 32,
}

VAE_SDXL_CONFIG: dict[str, Any] = {**VAE_CONFIG, "scaling_factor": 0.13025, "force_upcast": True}

# SDXL base's scheduler_config.json.
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "interpolation_type": "linear",
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}


def _text_config(hidden_act: str, hidden_size: int) -> dict[str, Any]:
    bos_id, eos_id = tokenizer_files.special_token_ids()
    return {
        "vocab_size": tokenizer_files.vocab_size(),
        "hidden_size": hidden_size,
        "intermediate_size": 2 * hidden_size,
        "num_hidden_layers": 3,  # SDXL reads the penultimate layer, so more than one is needed
        "num_attention_heads": 4,
        "max_position_embeddings": tokenizer_files.MODEL_MAX_LENGTH,
        "projection_dim": POOLED_SIZE,
        "hidden_act": hidden_act,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "pad_token_id": eos_id,
    }


def _model_index() -> dict[str, Any]:
    import diffusers

    return {
        "_class_name": "StableDiffusionXLPipeline",
        "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None],
        "force_zeros_for_empty_prompt": True,
        "image_encoder": [None, None],
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }


def _write_model(folder: Path, name: str) -> None:
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        # The activations of CLIP ViT-L and OpenCLIP bigG, as in SDXL base.
        text_encoder = CLIPTextModel(CLIPTextConfig(**_text_config("quick_gelu", TEXT_HIDDEN_SIZE)))
        torch.manual_seed(_SEED + 1)
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**_text_config("gelu", TEXT_2_HIDDEN_SIZE)))
        torch.manual_seed(_SEED + 2)
        unet = UNet2DConditionModel(**UNET_CONFIG)
        torch.manual_seed(_SEED + 3)
        vae = AutoencoderKL(**VAE_SDXL_CONFIG)

    text_encoder.save_pretrained(folder / "text_encoder", safe_serialization=True)
    text_encoder_2.save_pretrained(folder / "text_encoder_2", safe_serialization=True)
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    vae.save_pretrained(folder / "vae", safe_serialization=True)
    EulerDiscreteScheduler.from_config(SCHEDULER_CONFIG).save_pretrained(folder / "scheduler")
    tokenizer_files.write_tokenizer_files(folder / "tokenizer")
    tokenizer_files.write_tokenizer_files(folder / "tokenizer_2")
    write_json(folder / "model_index.json", _model_index())
    write_json(
        folder / MARKER_FILE,
        {"name": name, "note": TINY_MODEL_NOTE, "version": TINY_SDXL_VERSION, "seed": _SEED, "arch": "sdxl"},
    )


def create_tiny_sdxl_model(models_dir: Path, name: str = DEFAULT_NAME, *, overwrite: bool = False) -> Path:
    """Create the tiny SDXL model as the diffusers folder ``models_dir/name`` (see ``create_tiny_model``)."""
    return build_model_folder(models_dir, name, _write_model, overwrite=overwrite)
