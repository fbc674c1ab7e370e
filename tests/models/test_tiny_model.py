"""The offline tiny model and its single-file export, exercised through real diffusers on the CPU."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import CLIPTokenizer

from cauldrond.models import (
    TINY_MODEL_NOTE,
    CorruptCheckpointError,
    UnsupportedModelError,
    create_tiny_model,
    export_single_file,
    inspect_single_file,
    is_tiny_model,
    read_sidecar_config,
    sidecar_config_path,
)
from cauldrond.models.tiny import MARKER_FILE

COMPONENTS = ("unet", "vae", "text_encoder")
LOAD_KWARGS: dict[str, Any] = {
    "safety_checker": None,
    "requires_safety_checker": False,
    "local_files_only": True,
}


def _no_network(*args: object, **kwargs: object) -> None:
    raise OSError("network access attempted in an offline test")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline for real: the hub's offline switch on, and any outgoing connection fails loudly."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr(socket, "create_connection", _no_network)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def tiny(models_dir: Path) -> Path:
    return create_tiny_model(models_dir)


@pytest.fixture(scope="module")
def pipe(tiny: Path) -> Iterator[StableDiffusionPipeline]:
    pipeline = StableDiffusionPipeline.from_pretrained(str(tiny), **LOAD_KWARGS)
    pipeline.set_progress_bar_config(disable=True)
    yield pipeline


@pytest.fixture(scope="module")
def single_file(tiny: Path, models_dir: Path) -> Path:
    return export_single_file(tiny, models_dir / "tiny-single.safetensors")


def _generate(pipeline: StableDiffusionPipeline, prompt: str = "a cat", seed: int = 7) -> Image.Image:
    result = pipeline(
        prompt,
        num_inference_steps=2,
        height=64,
        width=64,
        guidance_scale=7.0,
        generator=torch.Generator("cpu").manual_seed(seed),
    )
    image: Image.Image = result.images[0]
    return image


def _weight_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.safetensors"))


# --- the folder ---------------------------------------------------------------------------------------------


def test_folder_has_the_sd1_layout_and_marker(tiny: Path) -> None:
    assert tiny.name == "tiny-sd"
    index = json.loads((tiny / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["safety_checker"] == [None, None]
    assert index["feature_extractor"] == [None, None]
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert index["vae"] == ["diffusers", "AutoencoderKL"]
    assert index["text_encoder"] == ["transformers", "CLIPTextModel"]

    vae = json.loads((tiny / "vae" / "config.json").read_text())
    assert 2 ** (len(vae["block_out_channels"]) - 1) == 8
    assert vae["latent_channels"] == 4
    assert vae["scaling_factor"] == pytest.approx(0.18215)
    unet = json.loads((tiny / "unet" / "config.json").read_text())
    text = json.loads((tiny / "text_encoder" / "config.json").read_text())
    assert unet["in_channels"] == unet["out_channels"] == 4
    assert unet["cross_attention_dim"] == text["hidden_size"]
    assert "CrossAttnDownBlock2D" in unet["down_block_types"]
    assert text["max_position_embeddings"] == 77
    scheduler = json.loads((tiny / "scheduler" / "scheduler_config.json").read_text())
    assert (scheduler["beta_schedule"], scheduler["beta_start"], scheduler["beta_end"]) == (
        "scaled_linear",
        0.00085,
        0.012,
    )
    assert scheduler["num_train_timesteps"] == 1000
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        assert (tiny / "tokenizer" / name).is_file()

    assert {p.parent.name for p in _weight_files(tiny)} == set(COMPONENTS)
    assert not list(tiny.rglob("*.bin")), "weights must be safetensors, never pickles"
    marker = json.loads((tiny / MARKER_FILE).read_text())
    assert marker["name"] == "tiny-sd"
    assert marker["note"] == TINY_MODEL_NOTE
    assert is_tiny_model(tiny)


def test_is_tiny_model_is_false_for_other_folders(tmp_path: Path) -> None:
    assert not is_tiny_model(tmp_path)
    (tmp_path / MARKER_FILE).write_text("{not json")
    assert not is_tiny_model(tmp_path)
    (tmp_path / MARKER_FILE).write_text(json.dumps({"name": "x", "note": "a real model"}))
    assert not is_tiny_model(tmp_path)


def test_build_is_deterministic_fast_and_leaves_the_global_rng_alone(tmp_path: Path, tiny: Path) -> None:
    torch.manual_seed(99)
    rng_before = torch.random.get_rng_state()
    first = create_tiny_model(tmp_path / "one")
    second = create_tiny_model(tmp_path / "two")
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    # Fast is a matter of size: about 3.2 million weights in all (SD 1.5's UNet alone has 860 million).
    weights = sum(t.numel() for path in _weight_files(first) for t in load_file(str(path)).values())
    assert weights <= 4_000_000, f"the tiny model has grown to {weights} weights"

    files = [p.relative_to(first) for p in sorted(first.rglob("*")) if p.is_file()]
    assert files == [p.relative_to(second) for p in sorted(second.rglob("*")) if p.is_file()]
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    # ...and the same weights as the module's model, built earlier in another process state.
    for relative in (p.relative_to(first) for p in _weight_files(first)):
        ours, theirs = load_file(str(first / relative)), load_file(str(tiny / relative))
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_existing_folder_is_returned_untouched_unless_overwrite(tmp_path: Path) -> None:
    folder = create_tiny_model(tmp_path, "m")
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(b"user edit")
    (folder / "extra.txt").write_text("keep me")

    assert create_tiny_model(tmp_path, "m") == folder
    assert weights.read_bytes() == b"user edit"
    assert (folder / "extra.txt").exists()

    assert create_tiny_model(tmp_path, "m", overwrite=True) == folder
    assert weights.read_bytes() == original
    assert not (folder / "extra.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"], "no build or retired folders left behind"


@pytest.mark.parametrize("name", ["", ".", "..", ".hidden", "a/b"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="invalid model name"):
        create_tiny_model(tmp_path, name)


# --- loading and generating ---------------------------------------------------------------------------------


def test_loads_offline_and_generates_a_64px_noise_image(
    offline: None, tiny: Path, pipe: StableDiffusionPipeline
) -> None:
    fresh = StableDiffusionPipeline.from_pretrained(str(tiny), **LOAD_KWARGS)
    assert fresh.vae_scale_factor == 8
    assert fresh.safety_checker is None

    image = _generate(pipe)
    assert isinstance(image, Image.Image)
    assert image.size == (64, 64)
    pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100, "a noise pattern, not one flat colour"

    assert np.array_equal(pixels, np.asarray(_generate(pipe))), "same seed, same image"
    assert not np.array_equal(pixels, np.asarray(_generate(pipe, seed=8))), "the seed matters"
    assert not np.array_equal(pixels, np.asarray(_generate(pipe, prompt="a red castle at night"))), (
        "the prompt reaches the UNet through the text encoder"
    )


@pytest.mark.parametrize(
    "prompt",
    ["a photo of a cat", "Ünïcödé 日本語 🐱 — ©", "", "word " * 300, "x\x00\ty\n\u200b"],
)
def test_tokenizer_encodes_any_prompt_to_77_tokens(tiny: Path, prompt: str) -> None:
    tokenizer = CLIPTokenizer.from_pretrained(str(tiny / "tokenizer"))
    assert tokenizer.model_max_length == 77
    ids = tokenizer(prompt, padding="max_length", max_length=77, truncation=True).input_ids
    assert len(ids) == 77
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.eos_token_id in ids
    # An unknown piece would come out as the unk token, which is eos in CLIP, and cut the text short.
    body = ids[1 : ids.index(tokenizer.eos_token_id)]
    decoded = tokenizer.decode(body).replace(" ", "")
    expected = "".join(prompt.lower().split())
    assert expected.startswith(decoded)
    if len(prompt) < 60:
        assert decoded == expected


def test_unicode_prompt_round_trips_through_the_tokenizer(tiny: Path) -> None:
    tokenizer = CLIPTokenizer.from_pretrained(str(tiny / "tokenizer"))
    prompt = "Ünïcödé 日本語 🐱"
    ids = tokenizer(prompt).input_ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == prompt.lower()
    assert len(tokenizer("a photo of a cat").input_ids) < len("a photo of a cat") + 2, "merges are used"


# --- single-file export -------------------------------------------------------------------------------------


def test_single_file_uses_the_ldm_layout(tiny: Path, single_file: Path) -> None:
    assert single_file.suffix == ".safetensors"
    with safe_open(str(single_file), "pt") as handle:
        keys = set(handle.keys())
        metadata = handle.metadata()
        shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in keys}
    prefixes = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.text_model.")
    assert all(key.startswith(prefixes) for key in keys)
    # Names as in the original SD 1.x checkpoints (v1-5-pruned-emaonly.safetensors).
    for key in (
        "model.diffusion_model.time_embed.0.weight",
        "model.diffusion_model.input_blocks.0.0.weight",
        "model.diffusion_model.input_blocks.1.0.in_layers.2.weight",
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
        "model.diffusion_model.input_blocks.3.0.op.weight",
        "model.diffusion_model.middle_block.1.proj_in.weight",
        "model.diffusion_model.middle_block.2.emb_layers.1.weight",
        "model.diffusion_model.output_blocks.2.1.conv.weight",
        "model.diffusion_model.output_blocks.3.1.proj_out.weight",
        "model.diffusion_model.output_blocks.5.2.conv.weight",
        "model.diffusion_model.out.2.weight",
        "first_stage_model.encoder.down.1.block.0.conv1.weight",
        "first_stage_model.encoder.down.0.downsample.conv.weight",
        "first_stage_model.encoder.mid.attn_1.q.weight",
        "first_stage_model.decoder.up.3.upsample.conv.weight",
        "first_stage_model.decoder.norm_out.weight",
        "first_stage_model.quant_conv.weight",
        "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight",
        "cond_stage_model.transformer.text_model.final_layer_norm.weight",
    ):
        assert key in keys, key
    # LDM's VAE attention is 1x1 convolutions, and its decoder levels count from the lowest resolution.
    assert shapes["first_stage_model.decoder.mid.attn_1.proj_out.weight"] == (64, 64, 1, 1)
    assert shapes["first_stage_model.decoder.up.3.block.0.conv1.weight"][0] == 64
    assert shapes["first_stage_model.decoder.up.0.block.0.conv1.weight"][0] == 32
    assert metadata["cauldron.config"] == "tiny-sd"
    assert metadata["cauldron.note"] == TINY_MODEL_NOTE
    folder_total = sum(len(load_file(str(p))) for p in _weight_files(tiny))
    assert len(keys) == folder_total, "every weight exported, nothing added"

    assert sidecar_config_path(single_file) == single_file.with_suffix(".config")
    assert sidecar_config_path(single_file).read_text() == "tiny-sd"
    assert read_sidecar_config(single_file) == "tiny-sd"
    assert inspect_single_file(single_file)["cauldron.config"] == "tiny-sd"
    assert not list(single_file.parent.glob(".*.tmp")), "no temp files left behind"


def test_single_file_loads_offline_with_identical_weights_and_image(
    offline: None, models_dir: Path, single_file: Path, pipe: StableDiffusionPipeline
) -> None:
    config_name = read_sidecar_config(single_file)
    assert config_name is not None
    loaded = StableDiffusionPipeline.from_single_file(
        str(single_file), config=str(models_dir / config_name), **LOAD_KWARGS
    )
    loaded.set_progress_bar_config(disable=True)
    for component in COMPONENTS:
        ours = getattr(loaded, component).state_dict()
        theirs = getattr(pipe, component).state_dict()
        assert ours.keys() == theirs.keys(), component
        different = [k for k in ours if not torch.equal(ours[k], theirs[k])]
        assert not different, f"{component}: {different[:5]}"
    assert loaded.vae_scale_factor == 8

    from_file = np.asarray(_generate(loaded), dtype=np.int16)
    from_folder = np.asarray(_generate(pipe), dtype=np.int16)
    assert np.abs(from_file - from_folder).max() <= 1


def test_truncated_or_foreign_files_give_clear_errors(tmp_path: Path, tiny: Path, single_file: Path) -> None:
    data = single_file.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match="truncated"):
        inspect_single_file(truncated)
    # diffusers itself refuses it too, naming the file.
    with pytest.raises(OSError, match=r"truncated\.safetensors"):
        StableDiffusionPipeline.from_single_file(str(truncated), config=str(tiny), **LOAD_KWARGS)

    for name, content in {"empty": b"", "tiny": b"abc", "garbage": b"\xff" * 4096}.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(content)
        with pytest.raises(CorruptCheckpointError, match=name):
            inspect_single_file(path)

    no_vae = tmp_path / "no_vae.safetensors"
    save_file({"model.diffusion_model.out.2.bias": torch.zeros(4)}, str(no_vae))
    with pytest.raises(CorruptCheckpointError, match="no VAE weights"):
        inspect_single_file(no_vae)


def test_export_refuses_what_it_cannot_represent(tmp_path: Path, tiny: Path) -> None:
    with pytest.raises(UnsupportedModelError, match=r"model_index\.json"):
        export_single_file(tmp_path, tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match=r"\.safetensors"):
        export_single_file(tiny, tmp_path / "x.ckpt")
    assert not list(tmp_path.iterdir()), "nothing written on refusal"


def test_sidecar_is_ignored_when_missing_or_unsafe(tmp_path: Path) -> None:
    checkpoint = tmp_path / "m.safetensors"
    assert read_sidecar_config(checkpoint) is None
    for bad in ("", "  \n", "../escape", "a/b", ".."):
        sidecar_config_path(checkpoint).write_text(bad)
        assert read_sidecar_config(checkpoint) is None, bad
    sidecar_config_path(checkpoint).write_text("tiny-sd\n")
    assert read_sidecar_config(checkpoint) == "tiny-sd"
