"""LoRAs, VAEs and embeddings through the real daemon: listings (RPC and the A1111 API), an A1111-style Prompt S/R
LoRA-weight sweep that plans and batches as documented (one batch per LoRA weight), infotext as A1111 writes it,
unknown names refused at creation with nothing stored, and a bad LoRA file failing only its own job.

Expected values come from outside the code under test: batch counts by hand (cells of one LoRA weight share a
batch, different weights never do), hashes with hashlib as A1111 computes them, the embedding width from the
tiny model's own text-encoder config."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import torch
from cauldron_client import Client, RpcError

from cauldrond.daemon import Daemon
from cauldrond.media.png import read_png_text
from tests.conftest import FAST, make_settings, token_of, url_of
from tests.providers import extra_files
from tests.waiting import finished

SWEEP = {"prompt_sr": ["<lora:detail:0.5>", "<lora:detail:1>", "<lora:detail:0>"], "seed": [1, 2]}
BASE = {**FAST, "prompt": "a lighthouse at dusk <lora:detail:0.5>", "seed": 1}


@pytest.fixture(scope="module")
def extras_models_dir(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("extras-models")
    (root / "tiny-sd").symlink_to(models_dir / "tiny-sd", target_is_directory=True)
    pipeline = extra_files.load_tiny(models_dir / "tiny-sd")
    extra_files.write_lora(pipeline, root / "loras" / "detail.safetensors")
    extra_files.write_pickle_as_safetensors(root / "loras" / "pickled.safetensors")
    torch.save({"x": torch.zeros(1)}, str(root / "loras" / "old.pt"))
    extra_files.write_vae(pipeline, root / "vae" / "other.safetensors")
    extra_files.write_embedding(pipeline, root / "embeddings" / "mystyle.safetensors", vectors=2)
    return root


@pytest.fixture
async def extras_daemon(tmp_path: Path, extras_models_dir: Path) -> AsyncIterator[Daemon]:
    running = Daemon(make_settings(tmp_path / "data", extras_models_dir, max_batch_size=4))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def extras_client(extras_daemon: Daemon) -> AsyncIterator[Client]:
    async with Client(url_of(extras_daemon), token_of(extras_daemon)) as connected:
        yield connected


async def a1111_get(daemon: Daemon, path: str) -> Any:
    # The daemon serves on this test's event loop: the blocking request goes to a worker thread.
    return await asyncio.to_thread(_a1111_get, daemon, path)


def _a1111_get(daemon: Daemon, path: str) -> Any:
    auth = base64.b64encode(f"user:{token_of(daemon)}".encode()).decode()
    request = urllib.request.Request(f"{url_of(daemon)}/sdapi/v1/{path}", headers={"Authorization": f"Basic {auth}"})
    with urllib.request.urlopen(request, timeout=30) as response:  # nosec B310 - the test's loopback daemon
        return json.loads(response.read())


async def test_listed_by_rpc_and_the_a1111_api(extras_daemon: Daemon, extras_client: Client) -> None:
    loras = {item["name"]: item for item in (await extras_client.call("loras.list"))["loras"]}
    assert set(loras) == {"detail", "pickled", "old"}
    assert loras["detail"]["usable"] and not loras["old"]["usable"] and "pickle" in loras["old"]["note"]
    vaes = (await extras_client.call("vaes.list"))["vaes"]
    assert [item["name"] for item in vaes] == ["other.safetensors"]
    embeddings = (await extras_client.call("embeddings.list"))["embeddings"]
    assert [item["name"] for item in embeddings] == ["mystyle"]

    assert sorted(item["name"] for item in await a1111_get(extras_daemon, "loras")) == ["detail", "pickled"]
    assert [item["model_name"] for item in await a1111_get(extras_daemon, "sd-vae")] == ["other.safetensors"]
    config = json.loads((extras_daemon.settings.resolved_models_dir / "tiny-sd/text_encoder/config.json").read_text())
    loaded = (await a1111_get(extras_daemon, "embeddings"))["loaded"]
    assert loaded["mystyle"]["shape"] == config["hidden_size"] and loaded["mystyle"]["vectors"] == 2


async def test_a_prompt_sr_lora_weight_sweep_plans_batches_and_records_as_a1111(
    extras_daemon: Daemon, extras_client: Client
) -> None:
    plan = await extras_client.call("experiments.plan", base=BASE, axes=SWEEP)
    # 3 weights x 2 seeds: the two seeds of one weight share a batch, different weights never do.
    assert (plan["cells"], plan["batches"], plan["model_loads"]) == (6, 3, 1)
    same = await extras_client.call(
        "experiments.plan",
        base={**FAST, "seed": 1},
        axes={"lora": ["detail"], "lora_weight": [0.5, 1, 0], "seed": [1, 2]},
    )
    assert (same["cells"], same["batches"]) == (6, 3)
    cfg = await extras_client.call(
        "experiments.plan", base=BASE, axes={"cfg_scale": [5, 7], "seed": [1, 2]}
    )  # one LoRA weight: CFG and seed vary per image, so the 4 cells are one batch
    assert (cfg["cells"], cfg["batches"]) == (4, 1)

    created = await extras_client.call("experiments.create", base=BASE, axes=SWEEP)
    result = await finished(extras_client, created["experiment"]["id"], timeout=600)
    jobs = result["jobs"]
    assert [job["status"] for job in jobs] == ["done"] * 6
    assert [job["params"]["loras"] for job in jobs[::2]] == [
        [{"name": "detail", "weight": weight}] for weight in (0.5, 1.0, 0.0)
    ]
    assert all(job["params"]["prompt"] == "a lighthouse at dusk" for job in jobs)
    lora = extras_daemon.settings.resolved_models_dir / "loras" / "detail.safetensors"
    data = lora.read_bytes()
    short = hashlib.sha256(data[8 + int.from_bytes(data[:8], "little") :]).hexdigest()[:12]
    for job, weight in zip(jobs[::2], ("0.5", "1", "0"), strict=True):
        image = (await extras_client.call("images.get", image_id=job["image_id"]))["image"]
        text = read_png_text(extras_daemon.settings.images_dir / image["path"])["parameters"]
        assert text.splitlines()[0] == f"a lighthouse at dusk <lora:detail:{weight}>"
        assert f'Lora hashes: "detail: {short}"' in text
        assert (
            json.loads(read_png_text(extras_daemon.settings.images_dir / image["path"])["cauldron"])["info"][
                "batch_size"
            ]
            == 2
        )

    vae = await extras_client.call("experiments.create", base={**BASE, "vae": "other.safetensors"})
    (vae_job,) = (await finished(extras_client, vae["experiment"]["id"], timeout=300))["jobs"]
    image = (await extras_client.call("images.get", image_id=vae_job["image_id"]))["image"]
    text = read_png_text(extras_daemon.settings.images_dir / image["path"])["parameters"]
    vae_hash = hashlib.sha256((lora.parent.parent / "vae" / "other.safetensors").read_bytes()).hexdigest()[:10]
    assert f"VAE hash: {vae_hash}, VAE: other.safetensors" in text
    # Four LoRA weights and a VAE later, the model was loaded once.
    assert (await extras_client.call("system.info"))["hardware"]["load_count"] == 1


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"base": {**FAST, "prompt": "a fox <lora:nope:0.7>"}}, "nope"),
        ({"base": {**FAST, "loras": [{"name": "missing", "weight": 1}]}}, "missing"),
        ({"base": FAST, "axes": {"lora": ["detail", "ghost"]}}, "ghost"),
        ({"base": {**FAST, "vae": "absent.safetensors"}}, "absent.safetensors"),
        ({"base": {**FAST, "loras": [{"name": "old"}]}}, "old"),
    ],
)
async def test_unknown_or_unusable_names_are_refused_at_creation(
    extras_client: Client, spec: dict[str, Any], named: str
) -> None:
    for method in ("experiments.plan", "experiments.create"):
        with pytest.raises(RpcError) as caught:
            await extras_client.call(method, **spec)
        assert named in caught.value.message
    assert (await extras_client.call("experiments.list"))["experiments"] == []


async def test_a_pickle_posing_as_a_lora_is_refused_at_creation_and_the_daemon_runs_on(extras_client: Client) -> None:
    # Its header is read when the experiment is created (test_extra_network_checks_daemon.py has every bad file,
    # and a file that turns bad after creation failing its job at run time).
    with pytest.raises(RpcError) as caught:
        await extras_client.call("experiments.create", base={**FAST, "loras": [{"name": "pickled"}]})
    assert "pickled.safetensors" in caught.value.message and "pickle" in caught.value.message
    assert (await extras_client.call("experiments.list"))["experiments"] == []
    good = await extras_client.call("experiments.create", base={**FAST, "seed": 3})
    (ok,) = (await finished(extras_client, good["experiment"]["id"], timeout=300))["jobs"]
    assert ok["status"] == "done" and ok["image_id"] is not None


A1111_WITH_LORA = (
    "a lighthouse at dusk, <lora:{name}:0.7>\n"
    "Steps: 2, Sampler: Euler, CFG scale: 6, Seed: 11, Size: 64x64, Model: tiny-sd, "
    'Lora hashes: "{name}: 0123456789ab", Version: v1.10.1'
)


async def test_an_a1111_infotext_with_a_lora_tag_imports_as_that_lora(extras_client: Client) -> None:
    text = A1111_WITH_LORA.format(name="detail").encode()
    queued = await extras_client.call("imports.run", content=text, filename="pasted.txt", format="a1111", queue=True)
    (job,) = (await finished(extras_client, queued["experiment"]["id"], timeout=300))["jobs"]
    assert job["status"] == "done"
    assert job["params"]["loras"] == [{"name": "detail", "weight": 0.7}]
    assert job["params"]["prompt"] == "a lighthouse at dusk,"

    missing = A1111_WITH_LORA.format(name="add_detail").encode()
    dry = await extras_client.call("imports.run", content=missing, filename="pasted.txt", format="a1111")
    assert any("add_detail" in problem for problem in dry["problems"])


async def test_cauldronctl_sweeps_lora_weights_and_names_an_unknown_lora(
    extras_daemon: Daemon, extras_client: Client
) -> None:
    from cauldron_client.cli import cli
    from click.testing import CliRunner

    def ctl(*args: str) -> Any:
        argv = ["--url", url_of(extras_daemon), "--token", token_of(extras_daemon), *args]
        return CliRunner().invoke(cli, argv, catch_exceptions=False)

    common = ["--size", "64x64", "--steps", "2", "--sampler", "Euler", "--seed", "1,2"]
    plan = await asyncio.to_thread(
        ctl,
        "--json",
        "sweep",
        "--prompt",
        "a fox <lora:detail:1>",
        *common,
        "--axis",
        "lora_weight=0-1 [3]",
        "--dry-run",
    )
    assert plan.exit_code == 0, plan.output
    assert (json.loads(plan.stdout)["cells"], json.loads(plan.stdout)["batches"]) == (6, 3)
    refused = await asyncio.to_thread(ctl, "generate", "a fox <lora:nope:0.5>", "--size", "64x64")
    assert refused.exit_code == 2 and "nope" in refused.stderr and "Traceback" not in refused.output
    assert (await extras_client.call("experiments.list"))["experiments"] == []
