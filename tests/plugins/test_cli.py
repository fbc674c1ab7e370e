"""cauldronctl plugins, images search, export --format NAME and import FILE against an in-process daemon (the
command runs its own event loop on a thread)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from cauldron_client.cli import cli
from cauldron_client.commands.imports import png_text_only
from click.testing import CliRunner, Result
from PIL import Image, PngImagePlugin

from cauldrond.daemon import Daemon
from tests.conftest import token_of, url_of
from tests.plugins.conftest import StartDaemon
from tests.plugins.sample_plugins import Tagger, TextFormat, source
from tests.waiting import finished


async def ctl(daemon: Daemon, *args: str) -> Result:
    runner = CliRunner()
    argv = ["--url", url_of(daemon), "--token", token_of(daemon), *args]
    return await asyncio.to_thread(runner.invoke, cli, argv, catch_exceptions=False)


async def test_plugin_commands(start_daemon: StartDaemon, tmp_path: Path) -> None:
    async with start_daemon([source("tagger", Tagger(), "3.1"), source("pipe", TextFormat())]) as (daemon, client):
        listed = await ctl(daemon, "plugins")
        assert listed.exit_code == 0, listed.output
        line = next(row for row in listed.stdout.splitlines() if row.startswith("tagger"))
        assert "3.1" in line and "loaded" in line and "0 ok" in line and "process_image" in line

        cells = tmp_path / "cells.txt"
        cells.write_text("a red fox|5|2\n")
        dry = await ctl(daemon, "import", str(cells))
        assert dry.exit_code == 0, dry.output
        assert "a red fox" in dry.stdout and "--queue queues them" in dry.stderr
        queued = await ctl(daemon, "--json", "import", str(cells), "--format", "pipe", "--queue")
        assert queued.exit_code == 0, queued.output
        experiment_id = json.loads(queued.stdout)["experiment"]["id"]
        image_id = (await finished(client, experiment_id))["jobs"][0]["image_id"]
        assert daemon.services is not None and daemon.services.postprocess is not None
        assert await daemon.services.postprocess.wait_idle(30)

        found = await ctl(daemon, "images", "search", "--tag", "FOX")
        assert found.exit_code == 0, found.output
        assert f"\n{image_id} " in found.stdout and "a red fox" in found.stdout
        nothing = await ctl(daemon, "images", "search", "zebra")
        assert nothing.exit_code == 0 and "no images match" in nothing.stderr

        out = tmp_path / "exported"
        exported = await ctl(daemon, "export", str(experiment_id), "--format", "pipe", "--out", str(out))
        assert exported.exit_code == 0, exported.output
        assert (out / f"image-{image_id}.txt").read_text() == "a red fox|5|2\n"
        unknown = await ctl(daemon, "export", "--image", str(image_id), "--format", "nonesuch")
        assert unknown.exit_code == 2 and "no export format 'nonesuch'" in unknown.stderr
        csv = await ctl(daemon, "export", str(experiment_id))
        assert csv.exit_code == 0 and "a red fox" in csv.stdout


def test_a_large_png_is_sent_as_its_text_chunks() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("workflow", '{"nodes": []}')
    info.add_itxt("prompt", '{"3": {"class_type": "KSampler"}}')
    buffer = io.BytesIO()
    Image.effect_noise((256, 256), 64).convert("RGB").save(buffer, "PNG", pnginfo=info)
    slim = png_text_only(buffer.getvalue())
    assert slim is not None and len(slim) < 200 < len(buffer.getvalue())
    with Image.open(io.BytesIO(slim)) as image:
        image.load()
        assert image.size == (1, 1)
        assert image.text == {"workflow": '{"nodes": []}', "prompt": '{"3": {"class_type": "KSampler"}}'}
    assert png_text_only(b"not a png") is None


async def test_search_needs_something_to_find(start_daemon: StartDaemon) -> None:
    async with start_daemon() as (daemon, _):
        result = await ctl(daemon, "images", "search")
        assert result.exit_code == 2 and "give words" in result.output
