"""The built-in a1111 importer through a real daemon: registered as a plugin, chosen by auto-detection, queued,
reported over RPC and by cauldronctl; bad input queues nothing."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client
from cauldron_client.cli import cli
from cauldron_client.errors import RpcError
from cauldron_comfyui.plugin import workflow_for
from click.testing import CliRunner, Result
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from cauldrond.daemon import Daemon
from cauldrond.media.png import read_png_text
from tests.conftest import token_of, url_of
from tests.waiting import finished

# As A1111 writes it, for a model and size the tiny test model can run: hires fix it cannot. (A <lora:...> tag in
# the prompt would be applied, or refused where no such LoRA is installed: tests/daemon/test_extra_networks_daemon.py.)
INFOTEXT = (
    "a lighthouse at dusk,\n"
    "Negative prompt: blurry, text\n"
    "Steps: 3, Sampler: DPM++ 2M Karras, CFG scale: 6, Seed: 1234567, Size: 64x64, Model hash: 0123456789, "
    'Model: tiny-sd, Denoising strength: 0.4, Hires upscale: 2, Lora hashes: "add_detail: 7c6bad76eb54", '
    "Version: v1.6.0"
)
EXPECTED = {
    "prompt": "a lighthouse at dusk,",
    "negative_prompt": "blurry, text",
    "model": "tiny-sd",
    "vae": "",
    "loras": [],
    "sampler": "DPM++ 2M",
    "schedule": "Karras",
    "steps": 3,
    "cfg_scale": 6.0,
    "seed": 1234567,
    "width": 64,
    "height": 64,
    "clip_skip": 1,
    "eta": 0.0,
}


def png_with(text: dict[str, str]) -> bytes:
    info = PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "navy").save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


async def counts(client: Client) -> tuple[int, int]:
    experiments = await client.call("experiments.list")
    queue = await client.call("queue.list")
    return len(experiments["experiments"]), len(queue["jobs"])


async def test_registered_as_a_plugin_and_listed(client: Client) -> None:
    formats = {f["name"]: f for f in (await client.call("imports.formats"))["formats"]}
    assert formats["a1111"]["plugin"] == "a1111"
    plugins = {p["name"]: p for p in (await client.call("plugins.list"))["plugins"]}
    assert plugins["a1111"]["status"] == "loaded"
    assert plugins["a1111"]["hooks"] == ["cauldron_register_importers"]


async def test_a1111_png_is_detected_queued_and_runs(client: Client, daemon: Daemon) -> None:
    content = png_with({"parameters": INFOTEXT})
    dry = await client.call("imports.run", content=content, filename="00001-1234567.png")
    assert dry["format"] == "a1111" and "experiment" not in dry
    assert dry["params"] == [EXPECTED]
    assert {(i["field"], i["value"]) for i in dry["ignored"]} == {
        ("Denoising strength", "0.4"),
        ("Hires upscale", "2"),
        ("Lora hashes", "add_detail: 7c6bad76eb54"),
    }
    assert {"Model hash: 0123456789", "Version: v1.6.0"} <= set(dry["notes"])
    assert dry["problems"] == []
    assert await counts(client) == (0, 0)  # a dry run queues nothing

    queued = await client.call("imports.run", content=content, filename="00001-1234567.png", queue=True)
    experiment = await finished(client, queued["experiment"]["id"])
    (job,) = experiment["jobs"]
    assert job["status"] == "done" and job["params"] == EXPECTED
    # Our own PNG carries the same settings back in its parameters chunk: importing it gives the same params.
    image = await client.call("images.get", image_id=job["image_id"])
    own = read_png_text(daemon.settings.images_dir / image["image"]["path"])
    again = await client.call("imports.run", content=own["parameters"].encode(), filename="own.txt", format="a1111")
    assert again["params"] == [EXPECTED]


async def test_dry_run_says_what_would_stop_queueing(client: Client) -> None:
    # A real A1111 v1.10.1 infotext: its SDXL model is not installed here.
    text = (
        "cat portrait,\nSteps: 13, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 4, Seed: 2535254266, "
        "Size: 1216x832, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Version: v1.10.1"
    )
    dry = await client.call("imports.run", content=text.encode(), filename="pasted.txt", format="a1111")
    (problem,) = dry["problems"]
    assert "unknown model 'sd_xl_base_1.0'" in problem and "tiny-sd" in problem
    with pytest.raises(RpcError) as caught:
        await client.call("imports.run", content=text.encode(), filename="pasted.txt", format="a1111", queue=True)
    assert "sd_xl_base_1.0" in caught.value.message
    assert await counts(client) == (0, 0)


async def test_comfyui_png_goes_to_the_comfyui_importer(client: Client) -> None:
    workflow, prompt = workflow_for(dict(EXPECTED))
    content = png_with({"prompt": json.dumps(prompt), "workflow": json.dumps(workflow)})  # as ComfyUI saves
    result = await client.call("imports.run", content=content, filename="ComfyUI_00001_.png")
    assert result["format"] == "comfyui"
    assert (result["params"][0]["sampler"], result["params"][0]["schedule"]) == ("DPM++ 2M", "Karras")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"GIF89a\x01\x00\x01\x00\x00\xff\x00", "a1111: neither a PNG nor UTF-8 text"),
        (png_with({"Software": "paint"}), "a1111: the PNG has no A1111 'parameters' text chunk"),
        (b"a cat on a mat, no settings at all", "a1111: no A1111 parameters line"),
        # Real A1111 inpainting infotext (v1.9.4): 985 is not a size cauldron can make.
        (
            b"perfume bottle\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 3001968073, "
            b"Size: 985x1266, Model hash: b513c6287d, Model: realism_engine, Denoising strength: 0.75, Mask blur: 2, "
            b"Version: v1.9.4",
            "width: Value error, must be a multiple of 8",
        ),
    ],
)
async def test_bad_input_is_refused_and_queues_nothing(client: Client, content: bytes, needle: str) -> None:
    before = await counts(client)
    with pytest.raises(RpcError) as caught:
        await client.call("imports.run", content=content, filename="bad", format=None, queue=True)
    assert caught.value.code == "invalid_params" and needle in caught.value.message
    assert await counts(client) == before == (0, 0)


async def ctl(daemon: Daemon, *args: str, stdin: bytes | None = None) -> Result:
    runner = CliRunner()
    argv = ["--url", url_of(daemon), "--token", token_of(daemon), *args]
    return await asyncio.to_thread(runner.invoke, cli, argv, input=stdin, catch_exceptions=False)


async def test_cauldronctl_import_png_and_pasted_infotext(daemon: Daemon, client: Client, tmp_path: Path) -> None:
    picture = tmp_path / "00001-1234567.png"
    picture.write_bytes(png_with({"parameters": INFOTEXT}))
    shown = await ctl(daemon, "import", str(picture))
    assert shown.exit_code == 0, shown.output
    assert "DPM++ 2M Karras" in shown.stdout and "1234567" in shown.stdout and "64x64" in shown.stdout
    assert "ignored: Hires upscale = 2 (img2img, inpainting and hires fix: cauldron runs txt2img only)" in shown.stderr
    assert "note: Model hash: 0123456789" in shown.stderr and "would not queue" not in shown.stderr

    pasted = await ctl(daemon, "--json", "import", "--format", "a1111", "--queue", "-", stdin=INFOTEXT.encode())
    assert pasted.exit_code == 0, pasted.output
    result: dict[str, Any] = json.loads(pasted.stdout)
    assert result["format"] == "a1111" and result["params"] == [EXPECTED]
    assert (await finished(client, result["experiment"]["id"]))["jobs"][0]["status"] == "done"

    garbage = await ctl(daemon, "import", "--format", "a1111", "--queue", "-", stdin=b"just words")
    assert garbage.exit_code != 0 and "no A1111 parameters line" in garbage.stderr
    assert len((await client.call("experiments.list"))["experiments"]) == 1  # only the good paste
