"""The webuiapi package from PyPI (the client scripts and bots use against A1111) against a running daemon:
every supported txt2img field, a model switch through options, progress with a live preview, interrupt, and
png-info on our own PNG. Expected values come from the request and A1111's rules (seeds count up from the
request's seed; infotext as A1111 writes it), not from the code under test."""

from __future__ import annotations

import base64
import io
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import webuiapi
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.a1111.conftest import DaemonThread, a1111_experiments, poll, start_daemon
from tests.a1111.helpers import FAST, decode_png, infotext_fields
from tests.providers import extra_files

DEADLINE_S = 120.0


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    """The tiny model under its own name and a copy named tiny-alt: a second checkpoint to switch to."""
    folder = tmp_path_factory.mktemp("two-models")
    shutil.copytree(models_dir / "tiny-sd", folder / "tiny-sd")
    shutil.copytree(models_dir / "tiny-sd", folder / "tiny-alt")
    pipeline = extra_files.load_tiny(folder / "tiny-sd")
    extra_files.write_vae(pipeline, folder / "vae" / "other.safetensors")
    extra_files.write_lora(pipeline, folder / "loras" / "detail.safetensors")
    return folder


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, two_models: Path) -> Iterator[DaemonThread]:
    running = start_daemon(tmp_path_factory.mktemp("webuiapi") / "data", two_models, max_cells=12)
    try:
        yield running
    finally:
        running.stop()


def client(daemon: DaemonThread) -> webuiapi.WebUIApi:
    # HTTP Basic as webuiapi sends it: any user name, the daemon's token as the password.
    return webuiapi.WebUIApi(baseurl=daemon.api, username="webuiapi-user", password=daemon.token, steps=2)


def test_txt2img_with_every_supported_field(daemon: DaemonThread) -> None:
    api = client(daemon)
    result = api.txt2img(
        prompt="a lighthouse at dusk",
        negative_prompt="fog",
        seed=1234,
        sampler_name="DPM++ 2M",
        scheduler="karras",
        steps=2,
        cfg_scale=5.5,
        width=64,
        height=72,
        batch_size=2,
        n_iter=2,
        eta=0.25,
        override_settings={"CLIP_stop_at_last_layers": 2, "sd_model_checkpoint": "tiny-alt"},
        send_images=True,
        save_images=True,
    )
    assert len(result.images) == 4
    assert all(image.size == (64, 72) for image in result.images)
    info = result.info
    # A1111: n = batch_size × n_iter images, seeds seed, seed + 1, ... in that order.
    assert info["all_seeds"] == [1234, 1235, 1236, 1237]
    assert info["sd_model_name"] == "tiny-alt"
    assert info["clip_skip"] == 2
    for seed, image, infotext in zip(info["all_seeds"], result.images, info["infotexts"], strict=True):
        assert image.info["parameters"] == infotext  # the PNG carries the same infotext
        assert infotext.split("\n")[0] == "a lighthouse at dusk"
        assert infotext.split("\n")[1] == "Negative prompt: fog"
        fields = infotext_fields(infotext)
        assert fields["Steps"] == "2" and fields["Sampler"] == "DPM++ 2M" and fields["Schedule type"] == "Karras"
        assert fields["CFG scale"] == "5.5" and fields["Seed"] == str(seed) and fields["Size"] == "64x72"
        assert fields["Model"] == "tiny-alt" and fields["Clip skip"] == "2" and fields["Eta"] == "0.25"
    # The request is an experiment of kind a1111 in the queue, like any other.
    experiment_id = info["cauldron"]["experiment_id"]
    shown = daemon.rpc("experiments.get", experiment_id=experiment_id)
    assert shown["experiment"]["kind"] == "a1111"
    assert shown["experiment"]["counts"]["done"] == 4
    jobs = shown["jobs"]
    assert [job["params"]["seed"] for job in jobs] == [1234, 1235, 1236, 1237]
    assert {(j["params"]["model"], j["params"]["clip_skip"], j["params"]["schedule"]) for j in jobs} == {
        ("tiny-alt", 2, "Karras")
    }


def test_legacy_sampler_names_and_a_random_seed(daemon: DaemonThread) -> None:
    api = client(daemon)
    # A combined pre-1.9 name carries its schedule; sampler_index is the pre-1.0 field for the sampler.
    combined = api.txt2img(prompt="p", sampler_name="DPM++ 2M Karras", scheduler="automatic", seed=-1, **FAST)
    reply = requests.post(
        f"{daemon.api}/txt2img",
        json={"prompt": "p", "sampler_index": "Euler a", "batch_size": 3, "seed": -1, **FAST},
        auth=("someone", daemon.token),
        timeout=DEADLINE_S,
    )
    assert reply.status_code == 200, reply.text
    legacy = reply.json()
    seeds = json.loads(legacy["info"])["all_seeds"]
    assert seeds == [seeds[0], seeds[0] + 1, seeds[0] + 2]  # one draw, then counting up (A1111)
    fields = infotext_fields(combined.info["infotexts"][0])
    assert fields["Sampler"] == "DPM++ 2M" and fields["Schedule type"] == "Karras"
    assert infotext_fields(json.loads(legacy["info"])["infotexts"][0])["Sampler"] == "Euler a"


def test_send_images_false_still_runs_and_keeps_the_image(daemon: DaemonThread) -> None:
    before = len(a1111_experiments(daemon))
    result = client(daemon).txt2img(prompt="kept", seed=5, send_images=False, **FAST)
    assert result.images == []
    experiments = a1111_experiments(daemon)
    assert len(experiments) == before + 1
    assert experiments[0]["counts"]["done"] == 1


def test_model_switch_through_options_persists(daemon: DaemonThread, tmp_path: Path) -> None:
    api = client(daemon)
    titles = [model["title"] for model in api.get_sd_models()]
    alt = next(title for title in titles if title.startswith("tiny-alt ["))
    api.set_options({"sd_model_checkpoint": alt})
    assert api.util_get_current_model() == alt
    result = api.txt2img(prompt="after the switch", seed=9, **FAST)
    assert result.info["sd_model_name"] == "tiny-alt"
    assert infotext_fields(result.info["infotexts"][0])["Model"] == "tiny-alt"
    # The choice is the daemon's default model for every front door: an RPC generate without a model uses it.
    made = daemon.rpc("generate", prompt="from rpc", steps=2, width=64, height=64)
    assert made["experiment"]["spec"]["base"]["model"] == "tiny-alt"
    assert daemon.rpc("models.list")["default_model"] == "tiny-alt"
    # A refused value changes nothing.
    refused = requests.post(
        f"{daemon.api}/options", json={"sd_model_checkpoint": "no-such-model"}, auth=("u", daemon.token), timeout=30
    )
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "sd_model_checkpoint"]
    assert api.util_get_current_model() == alt
    api.set_options({"sd_model_checkpoint": "tiny-sd"})
    assert api.util_get_current_model().startswith("tiny-sd [")


def test_model_choice_survives_a_restart(tmp_path: Path, two_models: Path) -> None:
    first = start_daemon(tmp_path / "data", two_models)
    try:
        client(first).set_options({"sd_model_checkpoint": "tiny-alt", "CLIP_stop_at_last_layers": 3})
    finally:
        first.stop()
    second = start_daemon(tmp_path / "data", two_models)
    try:
        options = client(second).get_options()
        assert options["sd_model_checkpoint"].startswith("tiny-alt [")
        assert options["CLIP_stop_at_last_layers"] == 3
    finally:
        second.stop()


def test_progress_shows_a_preview_and_interrupt_stops_the_run(daemon: DaemonThread) -> None:
    api = client(daemon)
    outcome: dict[str, Any] = {}

    def run() -> None:
        # Long enough to be seen running: 3 images of 500 steps, batched together.
        outcome["result"] = api.txt2img(prompt="slow", seed=77, steps=500, width=64, height=64, n_iter=3)

    worker = threading.Thread(target=run)
    worker.start()
    try:

        def preview_seen() -> dict[str, Any] | None:
            progress = api.get_progress()
            running = progress["state"]["sampling_step"] > 0 and progress["current_image"]
            return progress if running else None

        progress = poll(preview_seen, timeout=DEADLINE_S, interval=0.02)
        assert progress["state"]["job_count"] == 3
        assert progress["state"]["sampling_steps"] == 500
        assert 0 < progress["progress"] < 1
        preview = decode_png(progress["current_image"])
        assert preview.size[0] > 0 and preview.size[1] > 0
        api.interrupt()
    finally:
        worker.join(timeout=DEADLINE_S)
    assert not worker.is_alive()
    result = outcome["result"]
    assert result.info["cauldron"]["interrupted"] is True
    shown = daemon.rpc("experiments.get", experiment_id=result.info["cauldron"]["experiment_id"])
    counts = shown["experiment"]["counts"]
    assert counts["done"] == len(result.images) < 3
    assert counts["cancelled"] == 3 - len(result.images) and counts["queued"] == counts["running"] == 0
    idle = api.get_progress()
    assert idle["progress"] == 0 and idle["state"]["job_count"] == 0
    api.skip()  # accepted, and nothing to act on


def test_png_info_round_trip_on_our_own_png(daemon: DaemonThread) -> None:
    api = client(daemon)
    made = api.txt2img(prompt="round trip", negative_prompt="none", seed=4321, cfg_scale=6.5, **FAST)
    read = api.png_info(made.image)
    assert read.info == made.info["infotexts"][0]
    parameters = read.parameters
    assert parameters["Prompt"] == "round trip" and parameters["Negative prompt"] == "none"
    assert parameters["Seed"] == "4321" and parameters["CFG scale"] == "6.5" and parameters["Steps"] == "2"
    assert (parameters["Size-1"], parameters["Size-2"]) == ("64", "64")
    # Our exact JSON rides along as its own text item.
    assert '"seed":4321' in read.json["items"]["cauldron"]


def test_png_info_reads_a1111s_own_infotext(daemon: DaemonThread) -> None:
    # Infotext as A1111 1.10 writes it (modules/processing.py create_infotext), in a PNG made here.
    text = (
        "masterpiece, a castle\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, "
        'CFG scale: 7, Seed: 42, Size: 512x768, Model hash: 6ce0161689, Model: v1-5, Lora hashes: "a: 1, b: 2", '
        "Version: v1.10.1"
    )
    info = PngInfo()
    info.add_text("parameters", text)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    reply = requests.post(
        f"{daemon.api}/png-info",
        json={"image": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()},
        auth=("u", daemon.token),
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    parameters = reply.json()["parameters"]
    assert parameters["Prompt"] == "masterpiece, a castle" and parameters["Negative prompt"] == "blurry"
    assert parameters["Schedule type"] == "Karras" and parameters["Lora hashes"] == "a: 1, b: 2"
    assert (parameters["Size-1"], parameters["Size-2"]) == ("512", "768") and parameters["Clip skip"] == "1"


def test_a_vae_through_override_settings_and_a_lora_through_the_prompt(daemon: DaemonThread) -> None:
    api = client(daemon)
    assert [vae["model_name"] for vae in api.get_sd_vae()] == ["other.safetensors"]
    result = api.txt2img(
        prompt="a cat <lora:detail:0.5>", seed=3, override_settings={"sd_vae": "other.safetensors"}, **FAST
    )
    jobs = daemon.rpc("experiments.get", experiment_id=result.info["cauldron"]["experiment_id"])["jobs"]
    params = jobs[0]["params"]
    assert params["vae"] == "other.safetensors"
    assert params["loras"] == [{"name": "detail", "weight": 0.5}] and params["prompt"] == "a cat"
    assert infotext_fields(result.info["infotexts"][0])["VAE"] == "other.safetensors"
    refused = requests.post(
        f"{daemon.api}/txt2img",
        json={"prompt": "x", **FAST, "override_settings": {"sd_vae": "absent.safetensors"}},
        auth=("u", daemon.token),
        timeout=DEADLINE_S,
    )
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "override_settings", "sd_vae"]
