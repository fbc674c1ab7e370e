"""`cauldrond models create-tiny --arch sdxl`: the tiny SDXL in SDXL base's layout, loaded offline by diffusers' own
StableDiffusionXLPipeline (the reference reader of that layout), and its single-file export read back by
diffusers with identical weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from diffusers import StableDiffusionXLPipeline

from cauldrond.cli import main
from cauldrond.models.checkpoint_arch import SDXL, detect_architecture
from cauldrond.models.single_file import export_single_file


@pytest.fixture(scope="module")
def created(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    result = CliRunner().invoke(
        main, ["--data-dir", str(data), "models", "create-tiny", "--arch", "sdxl"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "tiny-sdxl ready at" in result.output
    return data / "models" / "tiny-sdxl"


def test_the_folder_has_sdxl_bases_layout(created: Path) -> None:
    index = json.loads((created / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    assert index["text_encoder"] == ["transformers", "CLIPTextModel"]
    assert index["text_encoder_2"] == ["transformers", "CLIPTextModelWithProjection"]
    assert index["tokenizer"] == index["tokenizer_2"] == ["transformers", "CLIPTokenizer"]
    unet = json.loads((created / "unet" / "config.json").read_text())
    text = json.loads((created / "text_encoder" / "config.json").read_text())
    text_2 = json.loads((created / "text_encoder_2" / "config.json").read_text())
    assert unet["addition_embed_type"] == "text_time"
    # Cross attention reads both encoders' hidden states side by side; the added embedding takes six time ids
    # (each embedded to addition_time_embed_dim) and the second encoder's pooled projection.
    assert unet["cross_attention_dim"] == text["hidden_size"] + text_2["hidden_size"]
    added = 6 * unet["addition_time_embed_dim"] + text_2["projection_dim"]
    assert unet["projection_class_embeddings_input_dim"] == added
    assert unet["down_block_types"][0] == "DownBlock2D"  # SDXL: no attention at the highest resolution
    vae = json.loads((created / "vae" / "config.json").read_text())
    assert vae["scaling_factor"] == pytest.approx(0.13025)


def test_diffusers_loads_it_offline_and_draws_64px(created: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipe = StableDiffusionXLPipeline.from_pretrained(str(created), local_files_only=True, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    image = pipe(
        "a cat",
        num_inference_steps=2,
        width=64,
        height=64,
        guidance_scale=5.0,
        generator=torch.Generator().manual_seed(1),
    ).images[0]
    assert image.size == (64, 64)


def test_the_single_file_export_reads_back_with_identical_weights(created: Path, tmp_path: Path) -> None:
    single = export_single_file(created, tmp_path / "tiny-sdxl-single.safetensors")
    assert detect_architecture(single) == SDXL
    loaded = StableDiffusionXLPipeline.from_single_file(str(single), config=str(created), local_files_only=True)
    original = StableDiffusionXLPipeline.from_pretrained(str(created), local_files_only=True)
    for component in ("unet", "vae", "text_encoder", "text_encoder_2"):
        ours, theirs = getattr(loaded, component).state_dict(), getattr(original, component).state_dict()
        assert ours.keys() == theirs.keys(), component
        different = [key for key in theirs if ours[key].is_meta or not torch.equal(ours[key], theirs[key])]
        assert not different, (component, different[:5])
