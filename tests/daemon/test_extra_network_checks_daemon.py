"""Bad LoRA, VAE and embedding files refused when the experiment is created, through a real daemon over RPC; and
the files' A1111 hashes remembered in the store across a restart.

Every bad file (truncated, a pickle named .safetensors, not a LoRA at all, a LoRA of the other tiny model's
architecture, a VAE with 16 latent channels, a garbled header, an embedding of the wrong width, an SD 1.x embedding
on SDXL) is refused by experiments.plan, experiments.create and generate with an error naming the file and the
reason, nothing is stored, and experiments already queued with good files finish. The expected hashes are computed
here with hashlib from A1111's definitions (LoRA: sha256 of the bytes after the safetensors header, first 12 hex;
VAE: of the whole file, first 10; embedding: of the whole file, first 12)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import sqlite3
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cauldron_client import Client, RpcError

from cauldrond.daemon import Daemon
from cauldrond.media.png import read_png_text
from tests.conftest import FAST, make_settings, token_of, url_of
from tests.providers import extra_files
from tests.waiting import finished

pytestmark = pytest.mark.asyncio(loop_scope="module")
SD = {**FAST, "model": "tiny-sd", "seed": 1}
XL = {**FAST, "model": "tiny-sdxl", "seed": 1}
# (what the request asks for, the file named, the reason given)
BAD: list[tuple[dict[str, Any], dict[str, Any] | None, str, str]] = [
    ({**SD, "loras": [{"name": "cut", "weight": 1}]}, None, "cut.safetensors", "truncated"),
    ({**SD, "loras": [{"name": "pickled", "weight": 1}]}, None, "pickled.safetensors", "pickle"),
    ({**SD, "prompt": "a fox <lora:xl-detail:0.5>"}, None, "xl-detail.safetensors", "another architecture"),
    ({**XL, "loras": [{"name": "detail", "weight": 1}]}, None, "detail.safetensors", "another architecture"),
    ({**SD, "loras": [{"name": "a-vae", "weight": 1}]}, None, "a-vae.safetensors", "none of its tensors are LoRA"),
    ({**SD, "vae": "wide.safetensors"}, None, "wide.safetensors", "16 latent channels"),
    (XL, {"vae": ["other.safetensors", "wide.safetensors"]}, "wide.safetensors", "16 latent channels"),
    ({**SD, "vae": "garbled.safetensors"}, None, "garbled.safetensors", "not safetensors"),
    ({**SD, "prompt": "a fox, narrow"}, None, "narrow.safetensors", "width 32"),
    ({**XL, "negative_prompt": "mystyle"}, None, "mystyle.safetensors", "'clip_l' and 'clip_g'"),
    (SD, {"lora": ["detail", "cut"]}, "cut.safetensors", "truncated"),
]


@pytest.fixture(scope="module")
def models(models_dir: Path, sdxl_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checked-extras")
    (root / "tiny-sd").symlink_to(models_dir / "tiny-sd", target_is_directory=True)
    (root / "tiny-sdxl").symlink_to(sdxl_models_dir / "tiny-sdxl", target_is_directory=True)
    sd = extra_files.load_tiny(models_dir / "tiny-sd")
    xl = extra_files.load_tiny(sdxl_models_dir / "tiny-sdxl")
    detail = extra_files.write_lora(sd, root / "loras" / "detail.safetensors")
    extra_files.write_lora(xl, root / "loras" / "xl-detail.safetensors")
    extra_files.write_truncated_copy(detail, root / "loras" / "cut.safetensors")
    extra_files.write_pickle_as_safetensors(root / "loras" / "pickled.safetensors")
    extra_files.write_vae(sd, root / "loras" / "a-vae.safetensors")
    extra_files.write_vae(sd, root / "vae" / "other.safetensors")
    extra_files.write_vae(sd, root / "vae" / "wide.safetensors", latent_channels=16)
    extra_files.write_garbled(root / "vae" / "garbled.safetensors")
    extra_files.write_embedding(sd, root / "embeddings" / "mystyle.safetensors")
    extra_files.write_embedding(xl, root / "embeddings" / "xlstyle.safetensors")
    extra_files.write_embedding(sd, root / "embeddings" / "narrow.safetensors", width=8)
    return root


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


async def _stored(client: Client) -> list[tuple[int, int]]:
    experiments = (await client.call("experiments.list", limit=1000))["experiments"]
    return sorted((experiment["id"], experiment["counts"]["total"]) for experiment in experiments)


async def test_bad_files_are_refused_at_creation_while_good_ones_run(client: Client) -> None:
    # Good files for each model, queued first: they must run while the bad requests are refused, and finish.
    good_sd = await client.call(
        "experiments.create",
        base={**SD, "prompt": "a fox, mystyle <lora:detail:1>", "vae": "other.safetensors"},
        axes={"lora_weight": [0.5, 1]},
        name="good sd",
    )
    good_xl = await client.call(
        "generate", **{**XL, "prompt": "a fox, xlstyle <lora:xl-detail:0.7>", "vae": "other.safetensors"}
    )
    before = await _stored(client)

    for base, axes, file, reason in BAD:
        calls: list[tuple[str, dict[str, Any]]] = [
            ("experiments.plan", {"base": base, "axes": axes or {}}),
            ("experiments.create", {"base": base, "axes": axes or {}}),
        ]
        if axes is None:
            calls.append(("generate", base))
        for method, params in calls:
            with pytest.raises(RpcError) as caught:
                await client.call(method, **params)
            message = caught.value.message
            assert file in message and reason in message, (method, base, axes, message)
            assert re.search(rf"(?<![\w-]){re.escape(file)}", message), message  # the file itself, not a namesake
        assert await _stored(client) == before, (base, axes)  # nothing stored

    for created, cells in ((good_sd, 2), (good_xl, 1)):
        result = await finished(client, created["experiment"]["id"], timeout=300)
        assert [job["status"] for job in result["jobs"]] == ["done"] * cells, result["jobs"]


async def test_a_file_that_turns_bad_after_creation_fails_its_job_and_the_daemon_runs_on(
    client: Client, models: Path
) -> None:
    # The run-time checks stay: the file is swapped for a pickle between creation and run (the queue paused).
    swap = models / "loras" / "swap.safetensors"
    swap.write_bytes((models / "loras" / "detail.safetensors").read_bytes())
    try:
        await client.call("queue.pause")
        try:
            created = await client.call("experiments.create", base={**SD, "loras": [{"name": "swap", "weight": 1}]})
            extra_files.write_pickle_as_safetensors(swap)
        finally:
            await client.call("queue.resume")
        (job,) = (await finished(client, created["experiment"]["id"], timeout=300))["jobs"]
        assert job["status"] == "failed" and job["image_id"] is None
        assert "swap.safetensors" in job["last_error"] and "pickle" in job["last_error"]
    finally:
        swap.unlink()
    after = await client.call("generate", **{**SD, "seed": 5})
    (ok,) = (await finished(client, after["experiment"]["id"], timeout=300))["jobs"]
    assert ok["status"] == "done" and ok["image_id"] is not None


async def test_the_a1111_api_answers_a_bad_file_with_a_422_naming_it(client: Client, daemon: Daemon) -> None:
    before = await _stored(client)
    body = {"prompt": "a fox <lora:cut:0.8>", "steps": 2, "width": 64, "height": 64, "sampler_name": "Euler"}
    status, answer = await asyncio.to_thread(_post_txt2img, daemon, body)
    assert status == 422, answer
    assert "cut.safetensors" in answer["detail"][0]["msg"] and "truncated" in answer["detail"][0]["msg"]
    vae = {**body, "prompt": "a fox", "override_settings": {"sd_vae": "wide.safetensors"}}
    status, answer = await asyncio.to_thread(_post_txt2img, daemon, vae)
    assert status == 422 and answer["detail"][0]["loc"] == ["body", "override_settings", "sd_vae"], answer
    assert "wide.safetensors" in answer["detail"][0]["msg"] and "latent channels" in answer["detail"][0]["msg"]
    assert await _stored(client) == before


def _post_txt2img(daemon: Daemon, body: dict[str, Any]) -> tuple[int, Any]:
    auth = base64.b64encode(f"user:{token_of(daemon)}".encode()).decode()
    request = urllib.request.Request(
        f"{url_of(daemon)}/sdapi/v1/txt2img",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # nosec B310 - the test's loopback daemon
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# --- hashes remembered across a restart ------------------------------------------------------------------------


def _a1111_hashes(folder: Path) -> tuple[str, str, str]:
    lora = (folder / "loras" / "detail.safetensors").read_bytes()
    return (
        hashlib.sha256(lora[8 + int.from_bytes(lora[:8], "little") :]).hexdigest(),
        hashlib.sha256((folder / "vae" / "other.safetensors").read_bytes()).hexdigest(),
        hashlib.sha256((folder / "embeddings" / "mystyle.safetensors").read_bytes()).hexdigest(),
    )


async def _generate_and_read_hashes(daemon: Daemon, seed: int) -> tuple[str, str, str]:
    """(Lora hash, VAE hash, TI hash) as the image written for one cell records them (short forms)."""
    async with Client(url_of(daemon), token_of(daemon)) as client:
        cell = {**SD, "prompt": "a fox, mystyle <lora:detail:1>", "vae": "other.safetensors", "seed": seed}
        created = await client.call("generate", **cell)
        (job,) = (await finished(client, created["experiment"]["id"], timeout=300))["jobs"]
        assert job["status"] == "done", job
        image = (await client.call("images.get", image_id=job["image_id"]))["image"]
    chunks = read_png_text(daemon.settings.images_dir / image["path"])
    text, info = chunks["parameters"], json.loads(chunks["cauldron"])["info"]
    lora = re.search(r'Lora hashes: "detail: ([0-9a-f]+)"', text)
    vae = re.search(r"VAE hash: ([0-9a-f]+)", text)
    assert lora is not None and vae is not None, text
    return lora.group(1), vae.group(1), info["ti_hashes"].removeprefix("mystyle: ")


async def test_hashes_are_remembered_in_the_store_across_a_restart_until_a_file_changes(
    models_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "tiny-sd").symlink_to(models_dir / "tiny-sd", target_is_directory=True)
    sd = extra_files.load_tiny(models_dir / "tiny-sd")
    files = [
        extra_files.write_lora(sd, folder / "loras" / "detail.safetensors", seed=1),
        extra_files.write_vae(sd, folder / "vae" / "other.safetensors", seed=2),
        extra_files.write_embedding(sd, folder / "embeddings" / "mystyle.safetensors", seed=3),
    ]
    first = _a1111_hashes(folder)
    settings = make_settings(tmp_path / "data", folder)

    running = Daemon(settings)
    await running.start()
    try:
        assert await _generate_and_read_hashes(running, seed=1) == (first[0][:12], first[1][:10], first[2][:12])
    finally:
        await running.stop()
    with sqlite3.connect(settings.database_path) as db:
        rows = {
            (path, algorithm): sha
            for path, algorithm, sha in db.execute("SELECT path, algorithm, sha256 FROM extra_network_hashes")
        }
    assert rows[(str(files[0].resolve()), "sha256-after-header")] == first[0]
    assert rows[(str(files[1].resolve()), "sha256")] == first[1]
    assert rows[(str(files[2].resolve()), "sha256")] == first[2]

    # Other bytes of the same sizes under the same mtimes: a daemon that read the files would see new hashes.
    stats = [path.stat() for path in files]
    extra_files.write_lora(sd, files[0], seed=11)
    extra_files.write_vae(sd, files[1], seed=12)
    extra_files.write_embedding(sd, files[2], seed=13)
    for path, stat in zip(files, stats, strict=True):
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert path.stat().st_size == stat.st_size
    second = _a1111_hashes(folder)
    assert all(old != new for old, new in zip(first, second, strict=True))

    running = Daemon(settings)
    await running.start()
    try:
        # A second start reuses the stored rows: the files are not read again.
        assert await _generate_and_read_hashes(running, seed=2) == (first[0][:12], first[1][:10], first[2][:12])
        # A new mtime is a new version of each file: hashed again. (An embedding stays loaded, with the hash it
        # was loaded with, until the model is unloaded; the store test covers its rehash.)
        for path, stat in zip(files, stats, strict=True):
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        lora, vae, _ = await _generate_and_read_hashes(running, seed=3)
        assert (lora, vae) == (second[0][:12], second[1][:10])
    finally:
        await running.stop()
