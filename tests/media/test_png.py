"""Atomic PNG writes and their metadata, on real files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

import cauldrond
from cauldrond.media.png import (
    a1111_parameters,
    is_temp_name,
    png_text_chunks,
    read_png_text,
    write_png_atomic,
)
from cauldrond.params import GenerationParams

VERSION = f"cauldron-{cauldrond.__version__}"


def picture(colour: tuple[int, int, int] = (200, 30, 90)) -> Image.Image:
    image = Image.new("RGB", (16, 8), colour)
    image.putpixel((3, 2), (1, 2, 3))
    return image


def test_a1111_parameters_in_full() -> None:
    params = GenerationParams(
        prompt="a lighthouse at dusk, oil painting",
        negative_prompt="blurry",
        sampler="DPM++ 2M",
        schedule="Karras",
        steps=20,
        cfg_scale=7.0,
        seed=1234,
        width=512,
        height=768,
        clip_skip=2,
    ).to_json_dict()
    text = a1111_parameters(params, {"model_short_hash": "6ce0161689", "model": "v1-5-pruned"})
    assert text == (
        "a lighthouse at dusk, oil painting\n"
        "Negative prompt: blurry\n"
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x768, "
        f"Model hash: 6ce0161689, Model: v1-5-pruned, Clip skip: 2, Version: {VERSION}"
    )


def test_a1111_parameters_leave_out_defaults() -> None:
    params = GenerationParams(prompt="a cat", seed=7, cfg_scale=6.5, width=64, height=64).to_json_dict()
    text = a1111_parameters(params, {"model": "tiny-sd"})
    # No negative prompt line, no Schedule type (Automatic), no Clip skip (1), no Model hash (unknown).
    assert text == (
        f"a cat\nSteps: 20, Sampler: Euler a, CFG scale: 6.5, Seed: 7, Size: 64x64, Model: tiny-sd, Version: {VERSION}"
    )
    # A value that would break the comma-separated line is quoted, as A1111 does.
    assert 'Model: "odd, name"' in a1111_parameters(params, {"model": "odd, name"})


def test_png_text_chunks_round_trip_through_a_written_file(tmp_path: Path) -> None:
    params = GenerationParams(prompt="灯台 at dusk — ünïcode", seed=99, width=64, height=64).to_json_dict()
    info = {"model": "tiny-sd", "model_short_hash": "abcdef0123", "device": "cpu", "dtype": "float32"}
    chunks = png_text_chunks(params, info)
    assert set(chunks) == {"parameters", "cauldron"}
    assert json.loads(chunks["cauldron"]) == {"params": params, "info": info}

    written = write_png_atomic(picture(), tmp_path, "00000-99.png", chunks)

    assert read_png_text(written.path) == chunks
    with Image.open(written.path) as reopened:
        assert reopened.format == "PNG" and reopened.size == (16, 8)
        assert reopened.convert("RGB").getpixel((3, 2)) == (1, 2, 3)


def test_write_is_atomic_and_reports_hash_and_size(tmp_path: Path) -> None:
    folder = tmp_path / "exp-000001"  # created on demand
    written = write_png_atomic(picture(), folder, "00001-5.png", {"parameters": "x"})

    data = written.path.read_bytes()
    assert written.path == folder / "00001-5.png"
    assert written.sha256 == hashlib.sha256(data).hexdigest()
    assert written.size_bytes == len(data)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert sorted(p.name for p in folder.iterdir()) == ["00001-5.png"]

    # Writing the same name again replaces the file whole.
    again = write_png_atomic(picture((0, 0, 0)), folder, "00001-5.png", {"parameters": "y"})
    assert again.sha256 != written.sha256
    assert read_png_text(again.path) == {"parameters": "y"}
    assert sorted(p.name for p in folder.iterdir()) == ["00001-5.png"]


def test_a_failed_rename_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "taken.png").mkdir()  # the final name is a folder: os.replace must fail
    with pytest.raises(OSError):
        write_png_atomic(picture(), tmp_path, "taken.png", {})
    assert [p.name for p in tmp_path.iterdir()] == ["taken.png"]


@pytest.mark.parametrize(
    "name",
    [
        "../escape.png",
        "a/b.png",
        "a\\b.png",
        "..png",
        "",
        ".png",
        "picture.jpg",
        ".tmp-abc.png",
        "nul\x00.png",
    ],
)
def test_unsafe_or_odd_filenames_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="refusing"):
        write_png_atomic(picture(), tmp_path / "images", name, {})
    assert not (tmp_path / "images").exists()
    assert not (tmp_path / "escape.png").exists()


def test_temp_names() -> None:
    assert is_temp_name(".tmp-0123abcd.png")
    assert not is_temp_name("00001-5.png")
    assert not is_temp_name(".tmp-notes.txt")


def test_read_png_text_refuses_other_formats(tmp_path: Path) -> None:
    jpeg = tmp_path / "photo.png"
    picture().save(jpeg, format="JPEG")
    with pytest.raises(ValueError, match="not a PNG"):
        read_png_text(jpeg)
