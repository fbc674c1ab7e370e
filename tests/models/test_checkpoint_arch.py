"""Single-file checkpoints offline: the architecture read from tensor names, and the shipped base-model configs.

The shipped configs are checked against figures published for the real models (parameter counts of each
component, built on the meta device so no weights are allocated) and CLIP's tokenizer against token ids
published with CLIP; detection runs on real safetensors files whose tensor names follow each family's layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from cauldrond.models.checkpoint_arch import (
    ARCHES,
    SD1,
    SD2,
    SD2_V,
    SDXL,
    UnrecognisedCheckpointError,
    config_folder,
    detect_architecture,
)

# Parameter counts of the public models' components (diffusers/transformers), as published for each release:
# SD 1.5 UNet 859.52M, SD 2.x UNet 865.91M, SDXL UNet 2.567B; the KL-f8 VAE 83.65M; CLIP ViT-L/14 text 123.06M,
# OpenCLIP ViT-H text (SD 2.x, 23 of its 24 layers) 340.39M, OpenCLIP ViT-bigG text with projection 694.66M.
PUBLISHED_PARAMETERS = {
    SD1: {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    SD2: {"unet": 865_910_724, "vae": 83_653_863, "text_encoder": 340_387_840},
    SD2_V: {"unet": 865_910_724, "vae": 83_653_863, "text_encoder": 340_387_840},
    SDXL: {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480, "text_encoder_2": 694_659_840},
}


def _count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


@pytest.mark.parametrize("arch", ARCHES)
def test_shipped_configs_build_the_published_models(tmp_path: Path, arch: str) -> None:
    folder = config_folder(arch, tmp_path)
    counts: dict[str, int] = {}
    with init_empty_weights():
        counts["unet"] = _count(UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet")))
        counts["vae"] = _count(AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae")))
        counts["text_encoder"] = _count(CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder")))
        if (folder / "text_encoder_2").is_dir():
            config_2 = CLIPTextConfig.from_pretrained(folder / "text_encoder_2")
            counts["text_encoder_2"] = _count(CLIPTextModelWithProjection(config_2))
    assert counts == PUBLISHED_PARAMETERS[arch]
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["prediction_type"] == ("v_prediction" if arch == SD2_V else "epsilon")
    assert config_folder(arch, tmp_path) == folder  # written once, then reused


def test_the_shipped_clip_tokenizer_is_clips(tmp_path: Path) -> None:
    folder = config_folder(SDXL, tmp_path)
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    # The ids CLIP's own documentation shows for this prompt; 49408 tokens as in every CLIP text encoder.
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert len(tokenizer) == 49408 and tokenizer.model_max_length == 77
    assert tokenizer.pad_token_id == 49407
    # OpenCLIP's encoders pad with id 0 ("!"), as the second SDXL tokenizer does.
    assert CLIPTokenizer.from_pretrained(folder / "tokenizer_2").pad_token_id == 0


def _checkpoint(path: Path, names: list[str], conv_in_channels: int = 4) -> Path:
    tensors = {name: torch.zeros(1) for name in names}
    tensors["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(2, conv_in_channels, 1, 1)
    tensors["first_stage_model.decoder.conv_out.bias"] = torch.zeros(3)
    save_file(tensors, str(path))
    return path


SD1_TEXT = "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight"
SD2_TEXT = "cond_stage_model.model.positional_embedding"
SDXL_TEXTS = [
    "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight",
    "conditioner.embedders.1.model.positional_embedding",
]


@pytest.mark.parametrize(
    ("names", "expected"),
    [([SD1_TEXT], SD1), ([SD2_TEXT], SD2), ([SD2_TEXT, "v_pred"], SD2_V), (SDXL_TEXTS, SDXL)],
)
def test_the_architecture_is_read_from_tensor_names(tmp_path: Path, names: list[str], expected: str) -> None:
    assert detect_architecture(_checkpoint(tmp_path / "m.safetensors", names)) == expected


@pytest.mark.parametrize(
    ("names", "channels", "reason"),
    [
        (["conditioner.embedders.0.model.positional_embedding"], 4, "SDXL refiner"),
        ([SD1_TEXT], 9, "9 input channels"),
        (["some.other.text_encoder.weight"], 4, "no text encoder this daemon recognises"),
        ([*SDXL_TEXTS, "v_pred"], 4, "SDXL v-prediction"),
    ],
)
def test_unrecognised_checkpoints_are_named_with_the_reason(
    tmp_path: Path, names: list[str], channels: int, reason: str
) -> None:
    path = _checkpoint(tmp_path / "odd-model.safetensors", names, channels)
    with pytest.raises(UnrecognisedCheckpointError, match=rf"^odd-model\.safetensors: .*{reason}"):
        detect_architecture(path)


def test_files_without_unet_or_vae_or_whole_data_are_refused(tmp_path: Path) -> None:
    lora = tmp_path / "a-lora.safetensors"
    save_file({"lora_unet_down_blocks_0.alpha": torch.zeros(1)}, str(lora))
    with pytest.raises(UnrecognisedCheckpointError, match=r"^a-lora\.safetensors: no UNet or VAE weights"):
        detect_architecture(lora)
    whole = _checkpoint(tmp_path / "cut.safetensors", [SD1_TEXT])
    data = whole.read_bytes()
    whole.write_bytes(data[:-5])
    with pytest.raises(UnrecognisedCheckpointError, match=r"^cut\.safetensors: truncated"):
        detect_architecture(whole)
    whole.write_bytes(data[:20])
    with pytest.raises(UnrecognisedCheckpointError, match=r"^cut\.safetensors: .*truncated inside its header"):
        detect_architecture(whole)
