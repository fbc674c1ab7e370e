"""Header-only checks of LoRA files in kohya's layout (A1111's usual kind) against the real base models' shapes.

The model shapes come from the published diffusers configs of SD 1.5 and SDXL base that ship with the daemon
(read through the same config folder a civitai checkpoint loads with); the LoRA files are headers with tiny
tensors of the real widths (768 for SD 1.x's text and cross-attention, 2048 for SDXL's cross-attention), named as
kohya's sd-scripts names them: SD 1.x in diffusers' block names, SDXL in the original ``input_blocks`` names with
``lora_te1_``/``lora_te2_`` for its two text encoders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from cauldrond.models.checkpoint_arch import config_folder
from cauldrond.models.extra_checks import ExtraFileError, check_lora
from cauldrond.models.model_shape import ModelShape, model_shape


def _shape(arch: str, tmp_path: Path) -> ModelShape:
    shape = model_shape(arch, config_folder(arch, tmp_path / "configs"), tmp_path)
    assert shape is not None
    return shape


def _lora(path: Path, widths: dict[str, int]) -> Path:
    """A kohya-style LoRA with a rank-4 down/up pair per module, each down weight ``[4, in_features]``."""
    tensors = {}
    for module, width in widths.items():
        tensors[f"{module}.lora_down.weight"] = torch.zeros(4, width)
        tensors[f"{module}.lora_up.weight"] = torch.zeros(8, 4)
        tensors[f"{module}.alpha"] = torch.tensor(4.0)
    save_file(tensors, str(path))
    return path


SD1_LORA = {
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k": 768,
    "lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn1_to_q": 320,
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj": 768,
}
SDXL_UNET = {
    "lora_unet_input_blocks_4_1_transformer_blocks_1_attn2_to_k": 2048,
    "lora_unet_input_blocks_7_1_transformer_blocks_9_attn1_to_q": 1280,
    "lora_unet_output_blocks_0_1_transformer_blocks_0_attn2_to_v": 2048,
    "lora_unet_middle_block_1_proj_in": 1280,
}
SDXL_TEXT = {
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj": 768,
    "lora_te2_text_model_encoder_layers_0_self_attn_q_proj": 1280,
}


def test_the_shipped_configs_give_the_published_widths(tmp_path: Path) -> None:
    sd1, sdxl = _shape("sd1", tmp_path), _shape("sdxl", tmp_path)
    assert (sd1.text_widths, sd1.cross_attention_dim, sd1.latent_channels) == ((768,), 768, 4)
    assert (sdxl.text_widths, sdxl.cross_attention_dim, sdxl.latent_channels) == ((768, 1280), 2048, 4)


def test_each_lora_fits_its_own_base_model(tmp_path: Path) -> None:
    check_lora(_lora(tmp_path / "sd1.safetensors", SD1_LORA), _shape("sd1", tmp_path))
    check_lora(_lora(tmp_path / "sdxl.safetensors", {**SDXL_UNET, **SDXL_TEXT}), _shape("sdxl", tmp_path))


@pytest.mark.parametrize(
    ("widths", "arch", "reason"),
    [
        (SDXL_TEXT, "sd1", "second text encoder"),
        (SDXL_UNET, "sd1", "2048-wide text embeddings (SDXL), the model's 768"),
        (SD1_LORA, "sdxl", "768-wide text embeddings (SD 1.x), the model's 2048"),
        # Names alone, widths left out: SD 1.x's first down block has attention, SDXL's has none.
        ({"lora_unet_down_blocks_0_attentions_0_proj_in": 320}, "sdxl", "down_blocks.0.attentions.0"),
        ({"lora_unet_input_blocks_1_1_proj_in": 320}, "sdxl", "input_blocks.1.1"),
        # SDXL's deepest blocks have 10 transformer blocks, SD 1.x's one.
        ({"lora_unet_input_blocks_7_1_transformer_blocks_9_attn1_to_q": 1280}, "sd1", "10 transformer blocks"),
        # A Flux LoRA in diffusers' layout: no UNet or text-encoder layer at all.
        ({"transformer.single_transformer_blocks.0.attn.to_q": 3072}, "sdxl", "none of its tensors names a layer"),
    ],
)
def test_a_lora_of_another_architecture_is_refused_naming_what_differs(
    tmp_path: Path, widths: dict[str, int], arch: str, reason: str
) -> None:
    path = _lora(tmp_path / "other.safetensors", widths)
    with pytest.raises(ExtraFileError, match=r"LoRA other\.safetensors is for another architecture") as caught:
        check_lora(path, _shape(arch, tmp_path))
    assert reason in str(caught.value)


@pytest.mark.parametrize("model", ["tiny-sd", "tiny-sdxl"])
def test_a_single_file_checkpoint_has_the_shape_of_the_folder_it_was_exported_from(
    model: str, models_dir: Path, sdxl_models_dir: Path, tmp_path: Path
) -> None:
    from cauldrond.models.single_file import export_single_file

    folder = (models_dir if model == "tiny-sd" else sdxl_models_dir) / model
    (tmp_path / model).symlink_to(folder, target_is_directory=True)
    single = export_single_file(folder, tmp_path / f"{model}-single.safetensors")  # its sidecar names the folder

    def config(part: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((folder / part / "config.json").read_text())
        return data

    encoders = [part for part in ("text_encoder", "text_encoder_2") if (folder / part).is_dir()]
    shape = model_shape(f"{model}-single", single, tmp_path)  # read from the file's header, not the folder
    assert shape is not None
    assert shape.text_widths == tuple(config(part)["hidden_size"] for part in encoders)
    assert shape.cross_attention_dim == config("unet")["cross_attention_dim"]
    assert shape.latent_channels == config("vae")["latent_channels"]
    assert shape.vae_levels == len(config("vae")["block_out_channels"])
    # The first down block has attention in tiny-sd, none in tiny-sdxl (as in SD 1.5 and SDXL base).
    assert shape.attention_sites is not None
    first_has_attention = config("unet")["down_block_types"][0].startswith("CrossAttn")
    assert (("down_blocks", 0, 0) in shape.attention_sites) == first_has_attention == (model == "tiny-sd")


def test_what_a_header_says_is_remembered_per_file_version(tmp_path: Path) -> None:
    import os

    path = _lora(tmp_path / "detail.safetensors", SD1_LORA)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 100])  # a download that stopped
    with pytest.raises(ExtraFileError, match=r"detail\.safetensors: truncated"):
        check_lora(path, None)
    with pytest.raises(ExtraFileError, match=r"detail\.safetensors: truncated"):  # remembered, still refused
        check_lora(path, None)
    path.write_bytes(whole)  # the download finished: a new version (size), read again
    check_lora(path, _shape("sd1", tmp_path))
    # Same size and mtime, other bytes: the remembered reading stands (the cache is keyed as documented).
    stat = path.stat()
    path.write_bytes(b"\x80" * len(whole))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    check_lora(path, _shape("sd1", tmp_path))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new mtime: read again
    with pytest.raises(ExtraFileError, match=r"detail\.safetensors: named \.safetensors but its content is a pickle"):
        check_lora(path, None)
