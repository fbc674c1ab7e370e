"""A plugin that is loaded but not configured says so (plugins.list, cauldronctl plugins, images.search) and gets
no images to process. The real cauldron-llm-tags plugin, as installed, in a real daemon."""

from __future__ import annotations

import asyncio
from typing import Any

from cauldron_client.cli import cli
from click.testing import CliRunner

from tests.conftest import FAST, token_of, url_of
from tests.plugins.conftest import StartDaemon
from tests.waiting import finished

TAGGER = "llm-tags"
ONLY_TAGGER = {"plugins": f"diffusers,{TAGGER}"}


def _plugin(listed: dict[str, Any], name: str) -> dict[str, Any]:
    return next(plugin for plugin in listed["plugins"] if plugin["name"] == name)


async def test_an_unconfigured_tagger_says_so_and_is_skipped(start_daemon: StartDaemon) -> None:
    async with start_daemon(**ONLY_TAGGER) as (daemon, client):
        tagger = _plugin(await client.call("plugins.list"), TAGGER)
        assert tagger["status"] == "loaded" and tagger["configured"] is False
        assert tagger["not_configured"].startswith("tagging is not configured: set url in [plugins.llm-tags]")
        assert _plugin(await client.call("plugins.list"), "diffusers")["configured"] is True

        created = await client.call("generate", **FAST)
        image_id = (await finished(client, created["experiment"]["id"]))["jobs"][0]["image_id"]
        assert daemon.services is not None and daemon.services.postprocess is not None
        assert await daemon.services.postprocess.wait_idle(30)
        # Skipped, not counted as work done ("loaded, 91 ok" was the complaint).
        assert (await client.call("images.annotations", image_id=image_id))["runs"] == []
        assert _plugin(await client.call("plugins.list"), TAGGER)["postprocess"]["ok"] == 0

        found = await client.call("images.search", tag="lighthouse")
        assert found["images"] == [] and found["has_more"] is False
        assert found["not_configured"] == [{"plugin": TAGGER, "not_configured": tagger["not_configured"]}]

        args = ["--url", url_of(daemon), "--token", token_of(daemon)]
        runner = CliRunner()
        plugins = await asyncio.to_thread(runner.invoke, cli, [*args, "plugins"], catch_exceptions=False)
        row = next(line for line in plugins.stdout.splitlines() if line.startswith(TAGGER))
        assert "loaded, not configured" in row and " ok" not in row
        assert f"{TAGGER}: tagging is not configured" in plugins.stderr
        search = await asyncio.to_thread(
            runner.invoke, cli, [*args, "images", "search", "--tag", "fox"], catch_exceptions=False
        )
        assert search.exit_code == 0
        assert f"note: plugin {TAGGER} is not annotating images: tagging is not configured" in search.stderr


async def test_configured_and_misconfigured_taggers(start_daemon: StartDaemon) -> None:
    # Port 9 (discard) on loopback: configured, though nothing answers; the check does not call the server.
    configured = {TAGGER: {"url": "http://127.0.0.1:9", "retries": 0, "timeout": 1}}
    async with start_daemon(**ONLY_TAGGER, plugin_settings=configured) as (daemon, client):
        tagger = _plugin(await client.call("plugins.list"), TAGGER)
        assert tagger["configured"] is True and tagger["not_configured"] is None
        created = await client.call("generate", **FAST)
        image_id = (await finished(client, created["experiment"]["id"]))["jobs"][0]["image_id"]
        assert daemon.services is not None and daemon.services.postprocess is not None
        assert await daemon.services.postprocess.wait_idle(30)
        runs = (await client.call("images.annotations", image_id=image_id))["runs"]
        assert [(run["plugin"], run["status"]) for run in runs] == [(TAGGER, "failed")]  # it was given the image
        assert (await client.call("images.search", tag="x"))["not_configured"] == []


async def test_invalid_settings_are_reported_as_not_configured(start_daemon: StartDaemon) -> None:
    bad = {TAGGER: {"url": "http://127.0.0.1:9", "backend": "carrier-pigeon"}}
    async with start_daemon(**ONLY_TAGGER, plugin_settings=bad) as (_, client):
        tagger = _plugin(await client.call("plugins.list"), TAGGER)
        assert tagger["status"] == "loaded" and tagger["configured"] is False
        assert "its settings are invalid" in tagger["not_configured"] and "backend" in tagger["not_configured"]
