"""tiny-sdxl end to end through a real daemon: folder and single-file checkpoint side by side in one CFG sweep,
with the infotext, the JSON metadata, a grid and the ComfyUI export/import; and checkpoints that must be refused
(truncated, a pickle named .safetensors, garbage, a LoRA where a checkpoint belongs), each failing with its file
and reason while the daemon keeps running other experiments and the files stay as they were."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import urllib.request
from collections.abc import AsyncIterator
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import torch
from cauldron_client import Client
from PIL import Image
from safetensors.torch import save_file

from cauldrond.daemon import Daemon
from cauldrond.models.single_file import export_single_file
from tests.conftest import make_settings, token_of, url_of
from tests.waiting import finished

CELL = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64, "steps": 2, "sampler": "Euler", "seed": 3}
BAD_FILES = ("truncated", "pickled", "not-a-model", "a-lora")
# One daemon for the module (its event loop too): on a small CPU each start costs seconds.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def models(sdxl_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sdxl-daemon-models")
    (folder / "tiny-sdxl").symlink_to(sdxl_models_dir / "tiny-sdxl", target_is_directory=True)
    single = export_single_file(folder / "tiny-sdxl", folder / "tiny-sdxl-single.safetensors")
    data = single.read_bytes()
    (folder / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    torch.save({"model.diffusion_model.out.2.bias": torch.zeros(4)}, folder / "pickled.safetensors")
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.alpha": torch.ones(1)}, str(folder / "a-lora.safetensors"))
    (folder / "not-a-model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00" + b'{"a": 1}        ' * 2)
    return folder


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def daemon(models: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Daemon]:
    running = Daemon(make_settings(tmp_path_factory.mktemp("data"), models))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def client(daemon: Daemon) -> AsyncIterator[Client]:
    async with Client(url_of(daemon), token_of(daemon)) as connected:
        yield connected


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(BytesIO(png)).convert("RGB"), dtype=np.int16)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _folder_sha256(folder: Path) -> str:
    # The documented folder hash: sha256 over "relative/path sha256\n" lines of its weight files, sorted by path.
    files = sorted(p for p in folder.rglob("*") if p.suffix == ".safetensors")
    lines = "".join(f"{p.relative_to(folder).as_posix()} {_sha256(p)}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


async def _fetch(daemon: Daemon, path: str) -> bytes:
    request = urllib.request.Request(url_of(daemon) + path, headers={"Authorization": f"Bearer {token_of(daemon)}"})

    def get() -> bytes:
        with urllib.request.urlopen(request, timeout=30) as response:  # nosec B310 - loopback test server
            body: bytes = response.read()
            return body

    return await asyncio.to_thread(get)


async def test_sdxl_sweep_folder_and_single_file(client: Client, daemon: Daemon, models: Path) -> None:
    created = await client.call(
        "experiments.create",
        base={**CELL, "model": "tiny-sdxl"},
        axes={"model": ["tiny-sdxl", "tiny-sdxl-single"], "cfg_scale": [1.0, 6.0]},
    )
    experiment_id = created["experiment"]["id"]
    result = await finished(client, experiment_id, timeout=300)
    assert result["experiment"]["counts"]["done"] == 4, result["experiment"]["counts"]
    images = (await client.call("images.list", experiment_id=experiment_id))["images"]
    by_cell = {(i["params"]["model"], i["params"]["cfg_scale"]): i for i in images}
    pngs = {key: await client.fetch_image(image["id"]) for key, image in by_cell.items()}

    # The single file is the same model: the same image within float rounding, at both CFG values.
    for cfg in (1.0, 6.0):
        diff = np.abs(_pixels(pngs[("tiny-sdxl", cfg)]) - _pixels(pngs[("tiny-sdxl-single", cfg)])).max()
        assert int(diff) <= 2, f"cfg {cfg}: {diff}"
    assert np.abs(_pixels(pngs[("tiny-sdxl", 1.0)]) - _pixels(pngs[("tiny-sdxl", 6.0)])).max() > 3

    # Infotext as A1111 writes it, with the model hash of the file (first 10 hex digits of its sha256).
    single_png = Image.open(BytesIO(pngs[("tiny-sdxl-single", 6.0)]))
    parameters = single_png.info["parameters"]
    assert parameters.startswith("a lighthouse at dusk\n")
    for field in ("Steps: 2", "Sampler: Euler", "CFG scale: 6", "Seed: 3", "Size: 64x64", "Model: tiny-sdxl-single"):
        assert field in parameters, (field, parameters)
    file_hash = _sha256(models / "tiny-sdxl-single.safetensors")
    assert f"Model hash: {file_hash[:10]}" in parameters
    folder_parameters = Image.open(BytesIO(pngs[("tiny-sdxl", 6.0)])).info["parameters"]
    assert f"Model hash: {_folder_sha256(models / 'tiny-sdxl')[:10]}" in folder_parameters

    # The JSON metadata: the exact params and how the image was made (one batch per model, CFG values mixed).
    exact = json.loads(single_png.info["cauldron"])
    assert exact["params"]["model"] == "tiny-sdxl-single" and exact["params"]["cfg_scale"] == 6.0
    assert exact["info"]["model_hash"] == file_hash
    assert exact["info"]["model_short_hash"] == file_hash[:10]
    assert exact["info"]["batch_size"] == 2

    # A grid of the sweep holds the real images.
    grids = await client.call("experiments.grid", experiment_id=experiment_id, x="cfg_scale", y="model")
    (grid,) = grids["grids"]
    grid_pixels = _pixels(await _fetch(daemon, grid["url"]))
    cell = _pixels(pngs[("tiny-sdxl-single", 6.0)])
    height, width, _ = grid_pixels.shape
    assert width >= 2 * 64 and height >= 2 * 64
    assert any(
        np.array_equal(grid_pixels[y : y + 64, x : x + 64], cell) for y in range(height - 63) for x in range(width - 63)
    )

    # ComfyUI: the same graph as for SD 1.x (CheckpointLoaderSimple + CLIPTextEncode), and back again.
    image_id = by_cell[("tiny-sdxl-single", 6.0)]["id"]
    exported = await client.call("exports.run", format="comfyui-api", image_id=image_id)
    graph = json.loads(exported["files"][0]["content"])
    loaders = [n for n in graph.values() if n["class_type"] == "CheckpointLoaderSimple"]
    assert [n["inputs"]["ckpt_name"] for n in loaders] == ["tiny-sdxl-single.safetensors"]
    assert [n["inputs"]["cfg"] for n in graph.values() if n["class_type"] == "KSampler"] == [6.0]
    back = await client.call(
        "imports.run", content=exported["files"][0]["content"], filename="g.json", format="comfyui"
    )
    (imported,) = back["params"]
    assert imported["model"] == "tiny-sdxl-single" and imported["cfg_scale"] == 6.0 and imported["seed"] == 3


async def test_bad_checkpoints_fail_with_file_and_reason_and_the_daemon_runs_on(client: Client, models: Path) -> None:
    before = {name: _sha256(models / f"{name}.safetensors") for name in BAD_FILES}
    created = await client.call("experiments.create", base={**CELL, "model": "tiny-sdxl"}, axes={"model": BAD_FILES})
    result = await finished(client, created["experiment"]["id"], timeout=120)
    errors = {job["params"]["model"]: job["last_error"] for job in result["jobs"]}
    assert result["experiment"]["counts"]["failed"] == 4, errors
    assert "truncated.safetensors" in errors["truncated"] and "truncated" in errors["truncated"].split(":", 1)[1]
    assert "pickled.safetensors" in errors["pickled"] and "pickle" in errors["pickled"]
    assert "not-a-model.safetensors" in errors["not-a-model"]
    assert "a-lora.safetensors: no UNet or VAE weights" in errors["a-lora"]
    assert {name: _sha256(models / f"{name}.safetensors") for name in BAD_FILES} == before

    # The daemon is up and still generates.
    after = await client.call("experiments.create", base={**CELL, "model": "tiny-sdxl"}, axes={"seed": [4]})
    done = await finished(client, after["experiment"]["id"], timeout=120)
    assert done["experiment"]["counts"]["done"] == 1


async def test_models_list_shows_each_file_hash_computed_once(client: Client, daemon: Daemon, models: Path) -> None:
    single = models / "tiny-sdxl-single.safetensors"
    expected = _sha256(single)
    listed = {m["name"]: m for m in (await client.call("models.list"))["models"]}
    assert (listed["tiny-sdxl-single"]["sha256"], listed["tiny-sdxl-single"]["short_hash"]) == (
        expected,
        expected[:10],
    )
    assert listed["tiny-sdxl"]["sha256"] == _folder_sha256(models / "tiny-sdxl")
    # Remembered in the store by path, size and mtime: a value planted there is what the next listing shows...
    stat = single.stat()
    with sqlite3.connect(daemon.settings.database_path) as db:
        row = db.execute(
            "SELECT sha256 FROM model_hashes WHERE path = ? AND size_bytes = ? AND mtime_ns = ?",
            (str(single.resolve()), stat.st_size, stat.st_mtime_ns),
        ).fetchone()
        assert row == (expected,)
        db.execute("UPDATE model_hashes SET sha256 = ? WHERE path = ?", ("f" * 64, str(single.resolve())))
    listed = {m["name"]: m for m in (await client.call("models.list"))["models"]}
    assert listed["tiny-sdxl-single"]["short_hash"] == "f" * 10
    # ...until the file changes (a new mtime): then it is hashed again.
    os.utime(single, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    listed = {m["name"]: m for m in (await client.call("models.list"))["models"]}
    assert listed["tiny-sdxl-single"]["sha256"] == expected
