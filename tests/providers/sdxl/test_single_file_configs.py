"""Which configs a single-file checkpoint is loaded with: detected from its tensor names (the shipped configs) or
named by its .config sidecar; never the hub. The tiny models' weights do not fit the real base models' configs,
so these loads fail, and the failure says which file, which architecture and where the configs came from."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
import torch

from cauldrond.models import sidecar_config_path
from cauldrond.models.checkpoint_arch import CONFIG_CACHE_DIR
from cauldrond.models.single_file import export_single_file
from cauldrond.providers.base import ProviderError
from cauldrond.providers.diffusers.loading import load_pipeline, resolve_model


def _no_network(*args: object, **kwargs: object) -> None:
    raise OSError("network access attempted in an offline test")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr(socket, "create_connection", _no_network)


@pytest.fixture
def models(sdxl_models_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    shutil.copytree(sdxl_models_dir / "tiny-sdxl", folder / "tiny-sdxl")
    export_single_file(folder / "tiny-sdxl", folder / "civitai.safetensors")
    return folder


def _load(models: Path, name: str) -> tuple[Any, Any]:
    return load_pipeline(resolve_model(models, name), models, allow_pickle=True, dtype=torch.float32)


def test_without_a_sidecar_the_shipped_sdxl_configs_are_used(models: Path, offline: None) -> None:
    sidecar_config_path(models / "civitai.safetensors").unlink()
    with pytest.raises(ProviderError, match=r"^cannot load civitai\.safetensors as sdxl \(detected from its tensor"):
        _load(models, "civitai")
    # The configs were written from the package data into the models dir, with CLIP's tokenizers.
    written = models / CONFIG_CACHE_DIR / "sdxl-v1"
    assert (written / "unet" / "config.json").is_file()
    assert (written / "tokenizer_2" / "vocab.json").is_file()


def test_the_sidecar_names_an_architecture_or_a_folder(models: Path, offline: None) -> None:
    sidecar = sidecar_config_path(models / "civitai.safetensors")
    sidecar.write_text("sd2-v\n")
    with pytest.raises(ProviderError, match=r"^cannot load civitai\.safetensors as sd2-v: "):
        _load(models, "civitai")
    sidecar.write_text("tiny-sdxl\n")  # the folder it was exported from: its own configs fit
    pipeline, _ = _load(models, "civitai")
    assert type(pipeline).__name__ == "StableDiffusionXLPipeline"
    sidecar.write_text("../elsewhere\n")
    with pytest.raises(ProviderError, match=r"civitai\.config must hold the name of a diffusers folder .* sd1, sd2"):
        _load(models, "civitai")


def test_a_pickle_needs_a_sidecar_to_say_what_it_is(models: Path, offline: None) -> None:
    torch.save({"model.diffusion_model.out.2.bias": torch.zeros(4)}, models / "old.ckpt")
    with pytest.raises(ProviderError, match=r"^cannot load old\.ckpt: a pickle checkpoint's .* into old\.config"):
        _load(models, "old")
