"""Model discovery, format detection by content, name checks and weight hashing (no pipeline is loaded)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from cauldrond.providers.base import ProviderError
from cauldrond.providers.diffusers.loading import (
    FOLDER,
    HASH_CACHE_FILE,
    HUB,
    PICKLE,
    SAFETENSORS,
    SINGLE_FILE,
    TORCH_ZIP,
    UNKNOWN,
    check_single_file,
    detect_format,
    discover_models,
    model_hash,
    resolve_model,
)

TENSORS = {"weight": torch.arange(6, dtype=torch.float32).reshape(2, 3)}


def _safetensors(path: Path) -> Path:
    save_file(TENSORS, str(path), metadata={"cauldron.note": "made by a test"})
    return path


def _torch_zip(path: Path) -> Path:
    torch.save({"state_dict": TENSORS}, path)
    return path


def _raw_pickle(path: Path) -> Path:
    path.write_bytes(pickle.dumps({"state_dict": [1, 2, 3]}, protocol=2))
    return path


def _folder(models: Path, name: str, note: str | None = None) -> Path:
    folder = models / name
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text("{}", encoding="utf-8")
    _safetensors(folder / "unet" / "diffusion_pytorch_model.safetensors")
    if note is not None:
        (folder / "CAULDRON_MODEL.json").write_text(json.dumps({"name": name, "note": note}), encoding="utf-8")
    return folder


def test_format_is_read_from_the_bytes_not_the_name(tmp_path: Path) -> None:
    assert detect_format(_safetensors(tmp_path / "a.ckpt")) == SAFETENSORS
    assert detect_format(_torch_zip(tmp_path / "b.safetensors")) == TORCH_ZIP
    assert detect_format(_raw_pickle(tmp_path / "c.safetensors")) == PICKLE
    (tmp_path / "d.safetensors").write_bytes(b"hello world, not a model")
    assert detect_format(tmp_path / "d.safetensors") == UNKNOWN
    (tmp_path / "e.safetensors").write_bytes(b"")
    assert detect_format(tmp_path / "e.safetensors") == UNKNOWN


@pytest.mark.parametrize("allow_pickle", [False, True])
def test_a_pickle_named_safetensors_is_always_refused(tmp_path: Path, allow_pickle: bool) -> None:
    for fake in (_torch_zip(tmp_path / "zip.safetensors"), _raw_pickle(tmp_path / "raw.safetensors")):
        with pytest.raises(ProviderError, match=r"named \.safetensors but its content is a pickle"):
            check_single_file(fake, allow_pickle=allow_pickle)


def test_pickle_checkpoints_need_allow_pickle(tmp_path: Path) -> None:
    ckpt = _torch_zip(tmp_path / "model.ckpt")
    with pytest.raises(ProviderError, match=r"pickle checkpoint.*allow_pickle"):
        check_single_file(ckpt, allow_pickle=False)
    assert check_single_file(ckpt, allow_pickle=True) == TORCH_ZIP
    assert check_single_file(_raw_pickle(tmp_path / "old.pt"), allow_pickle=True) == PICKLE


def test_mislabelled_and_garbage_files_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match=r"rename it to \.safetensors"):
        check_single_file(_safetensors(tmp_path / "model.bin"), allow_pickle=True)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ProviderError, match="not a valid safetensors"):
        check_single_file(tmp_path / "junk.safetensors", allow_pickle=True)
    assert check_single_file(_safetensors(tmp_path / "ok.safetensors"), allow_pickle=False) == SAFETENSORS


def test_discovery_lists_folders_and_checkpoints_only(tmp_path: Path) -> None:
    models = tmp_path / "models"
    _folder(models, "base", note="random weights, for tests")
    (models / "not-a-model").mkdir()
    (models / ".tiny-sd.123.building").mkdir()
    (models / ".tiny-sd.123.building" / "model_index.json").write_text("{}", encoding="utf-8")
    _safetensors(models / "civitai.safetensors")
    (models / "civitai.config").write_text("base", encoding="utf-8")
    _torch_zip(models / "old.ckpt")
    (models / "readme.txt").write_text("hi", encoding="utf-8")
    (models / HASH_CACHE_FILE).write_text("{}", encoding="utf-8")

    found = {source.name: source for source in discover_models(models)}
    assert sorted(found) == ["base", "civitai", "old"]
    assert (found["base"].kind, found["base"].note) == (FOLDER, "random weights, for tests")
    assert found["civitai"].kind == SINGLE_FILE
    assert found["civitai"].note == "made by a test; config: base"
    assert found["old"].is_pickle_file and "allow_pickle" in found["old"].note
    assert discover_models(tmp_path / "missing") == []


def test_a_folder_wins_over_a_file_of_the_same_name(tmp_path: Path) -> None:
    _folder(tmp_path, "same")
    _safetensors(tmp_path / "same.safetensors")
    (source,) = discover_models(tmp_path)
    assert source.kind == FOLDER


@pytest.mark.parametrize(
    "name",
    [
        "../secrets",
        "..",
        "base/../../etc",
        "/etc/passwd",
        "~/models/x",
        "C:\\models\\x",
        "C:x",
        "a\\b",
        "org/name/extra",
        "org/../name",
        ".hidden",
        "",
        " base",
        "base\x00",
    ],
)
def test_names_that_could_leave_the_models_dir_are_rejected(tmp_path: Path, name: str) -> None:
    _folder(tmp_path, "base")
    with pytest.raises(ProviderError, match="invalid model name"):
        resolve_model(tmp_path, name)


def test_resolution_finds_local_models_and_treats_org_name_as_hub(tmp_path: Path) -> None:
    _folder(tmp_path, "base")
    assert resolve_model(tmp_path, "base").path == tmp_path / "base"
    hub = resolve_model(tmp_path, "stabilityai/sd-turbo")
    assert (hub.kind, hub.path) == (HUB, None)
    with pytest.raises(ProviderError, match=r"unknown model 'nope'; models in .*: base"):
        resolve_model(tmp_path, "nope")


def test_single_file_hash_is_the_sha256_of_the_file(tmp_path: Path) -> None:
    path = _safetensors(tmp_path / "one.safetensors")
    (source,) = discover_models(tmp_path)
    result = model_hash(source, tmp_path)
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.short == result.sha256[:10]


def test_hashes_are_cached_by_size_and_mtime(tmp_path: Path) -> None:
    path = _safetensors(tmp_path / "one.safetensors")
    (source,) = discover_models(tmp_path)
    real = model_hash(source, tmp_path).sha256
    cache_path = tmp_path / HASH_CACHE_FILE
    cache = json.loads(cache_path.read_text(encoding="utf-8"))
    assert cache["one.safetensors"]["sha256"] == real

    # A planted value proves the cache is read instead of the file being hashed again...
    cache["one.safetensors"]["sha256"] = "f" * 64
    cache_path.write_text(json.dumps(cache), encoding="utf-8")
    assert model_hash(source, tmp_path).sha256 == "f" * 64
    # ...and a changed mtime proves a stale entry is not trusted.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert model_hash(source, tmp_path).sha256 == real


def test_folder_hash_covers_every_weight_file(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "base")
    (source,) = discover_models(tmp_path)
    first = model_hash(source, tmp_path).sha256
    (folder / "config.json").write_text('{"changed": true}', encoding="utf-8")
    assert model_hash(source, tmp_path).sha256 == first  # configs are not weights
    (folder / "vae").mkdir()
    _safetensors(folder / "vae" / "diffusion_pytorch_model.safetensors")
    assert model_hash(source, tmp_path).sha256 != first


def test_an_unwritable_cache_only_costs_a_rehash(tmp_path: Path) -> None:
    path = _safetensors(tmp_path / "one.safetensors")
    (tmp_path / HASH_CACHE_FILE).mkdir()  # a folder where the file should be: writes fail
    (source,) = discover_models(tmp_path)
    assert model_hash(source, tmp_path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
