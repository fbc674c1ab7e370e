"""An experiment export writes what the format can express and names each image it cannot, with the reason:
one PLMS cell no longer costs a ComfyUI export of the whole experiment its files."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from cauldron_client import Client
from cauldron_client.cli import cli
from cauldron_client.errors import RpcError
from click.testing import CliRunner, Result

from cauldrond.daemon import Daemon
from tests.conftest import FAST, token_of, url_of
from tests.waiting import finished


async def ctl(daemon: Daemon, *args: str) -> Result:
    argv = ["--url", url_of(daemon), "--token", token_of(daemon), *args]
    return await asyncio.to_thread(CliRunner().invoke, cli, argv, catch_exceptions=False)


async def run(client: Client, samplers: list[str]) -> dict[str, list[int]]:
    created = await client.call(
        "experiments.create", name="mixed", base={**FAST, "steps": 2}, axes={"sampler": samplers, "seed": [1, 2]}
    )
    experiment = await finished(client, created["experiment"]["id"])
    by_sampler: dict[str, list[int]] = {}
    for job in experiment["jobs"]:
        assert job["status"] == "done", job
        by_sampler.setdefault(job["params"]["sampler"], []).append(job["image_id"])
    return {"experiment": [created["experiment"]["id"]], **by_sampler}


async def test_plms_images_are_listed_and_euler_images_written(daemon: Daemon, client: Client, tmp_path: Path) -> None:
    ids = await run(client, ["Euler", "PLMS"])
    (experiment_id,) = ids["experiment"]
    result = await client.call("exports.run", format="comfyui", experiment_id=experiment_id)
    assert sorted(f["filename"] for f in result["files"]) == sorted(f"image-{i}.comfyui.json" for i in ids["Euler"])
    assert sorted(s["image_id"] for s in result["skipped"]) == sorted(ids["PLMS"])
    assert all("PLMS" in s["reason"] and "no ComfyUI equivalent" in s["reason"] for s in result["skipped"])
    for item in result["files"]:  # each written file is a whole workflow of an Euler image
        (sampler,) = [n for n in json.loads(item["content"])["nodes"] if n["type"] == "KSampler"]
        assert sampler["widgets_values"][4] == "euler"

    out = tmp_path / "comfy"
    exported = await ctl(daemon, "export", str(experiment_id), "--format", "comfyui", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    assert sorted(p.name for p in out.iterdir()) == sorted(f"image-{i}.comfyui.json" for i in ids["Euler"])
    for image_id in ids["PLMS"]:
        assert f"skipped image {image_id}: " in exported.stderr
    assert "2 file(s) in comfyui format; 2 image(s) skipped" in exported.stderr


async def test_an_experiment_with_nothing_exportable_is_an_error_and_writes_nothing(
    daemon: Daemon, client: Client, tmp_path: Path
) -> None:
    ids = await run(client, ["PLMS"])
    (experiment_id,) = ids["experiment"]
    with pytest.raises(RpcError) as caught:
        await client.call("exports.run", format="comfyui", experiment_id=experiment_id)
    assert caught.value.code == "invalid_params"
    assert f"no image of experiment {experiment_id} can be exported" in caught.value.message
    out = tmp_path / "none"
    exported = await ctl(daemon, "export", str(experiment_id), "--format", "comfyui", "--out", str(out))
    assert exported.exit_code != 0 and "no ComfyUI equivalent" in exported.stderr
    assert not out.exists() or not any(out.iterdir())
