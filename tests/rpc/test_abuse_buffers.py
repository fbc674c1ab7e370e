"""Abuse item 2 (issue 9): a client that asks for large replies and never reads pins no more than its outbox
budget. The daemon stops reading its requests, then closes it with 1008 and a reason; other clients are served
and nothing is lost. Large exports come in parts instead of one frame over the client's limit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client, RpcError
from cauldron_client.cli import cli
from click.testing import CliRunner
from websockets.exceptions import ConnectionClosed

from cauldrond.daemon import Daemon
from cauldrond.rpc.methods import plugins as plugin_methods
from tests.conftest import FAST, token_of, url_of
from tests.rpc.abuse import assert_alive, limits_of, raw_connect, request
from tests.waiting import finished, until

MiB = 1024 * 1024
CELLS = 400
REQUESTS = 64


async def test_a_client_that_never_reads_is_cut_off_at_its_budget(daemon: Daemon, client: Client) -> None:
    limits = limits_of(daemon)
    # Scaled down from the probe's 64 x 81 MB: budgets of 256 KiB / 1 MiB against 64 replies of about 0.5 MB.
    limits.outbox_budget_bytes, limits.outbox_close_bytes, limits.stall_close_s = 256 * 1024, MiB, 2.0
    await client.call("queue.pause")
    cells = [{"prompt": f"{n:04d} " + "a lighthouse at dusk " * 20} for n in range(CELLS)]
    created = await client.call("experiments.create", name="heavy", base=FAST, cells=cells)
    experiment_id = created["experiment"]["id"]
    one = await client.call("experiments.get", experiment_id=experiment_id, jobs_limit=CELLS)
    reply_bytes = len(repr(one))  # about the size of one reply; its msgpack is smaller
    assert REQUESTS * reply_bytes > 20 * MiB  # what the daemon would hold for this client without a budget

    before = set(limits.connections)
    async with raw_connect(daemon, max_queue=1) as lazy:  # reads one frame, then leaves the rest unread
        (connection,) = await until(lambda: _new(limits.connections, before), timeout=10)
        for msgid in range(REQUESTS):
            await lazy.send(request(msgid, "experiments.get", experiment_id=experiment_id, jobs_limit=CELLS))
        await assert_alive(daemon)  # served while the lazy client's replies pile up
        await until(lambda: _closed(connection), timeout=30)
        assert connection.close_reason is not None and "not reading replies" in connection.close_reason
        assert connection.peak_outbox_bytes <= limits.outbox_close_bytes + 2 * reply_bytes
        assert connection.outbox_bytes == 0  # what it left unread was freed at once
        with pytest.raises(ConnectionClosed) as caught:
            for _ in range(REQUESTS + 1):  # bounded: its replies (those sent before the close), then the close
                await asyncio.wait_for(lazy.recv(), 30)
        assert caught.value.rcvd is None or caught.value.rcvd.code == 1008
    await assert_alive(daemon)
    after = await client.call("experiments.get", experiment_id=experiment_id, jobs_limit=CELLS)
    assert after["experiment"]["counts"] == one["experiment"]["counts"]  # nothing lost
    assert [job["params"]["prompt"] for job in after["jobs"]] == [cell["prompt"] for cell in cells]


async def _new(connections: set[Any], before: set[Any]) -> Any:
    fresh = [connection for connection in connections if connection not in before]
    return fresh or None


async def _closed(connection: Any) -> bool:
    return connection.close_reason is not None


async def test_an_export_longer_than_a_part_comes_in_parts(daemon: Daemon, client: Client) -> None:
    created = await client.call("experiments.create", name="parts", base=FAST, axes={"seed": [1, 2, 3, 4]})
    experiment_id = created["experiment"]["id"]
    await finished(client, experiment_id)
    whole = await client.call("experiments.export", experiment_id=experiment_id, format="json")
    assert whole["parts"] == 1 and whole["rows"] == 4
    daemon.services.results.export_part_chars = 1000  # type: ignore[union-attr]
    first = await client.call("experiments.export", experiment_id=experiment_id, format="json")
    assert first["parts"] == -(-len(whole["content"]) // 1000) > 1
    parts = [first["content"]] + [
        (await client.call("experiments.export", experiment_id=experiment_id, format="json", part=n))["content"]
        for n in range(1, first["parts"])
    ]
    assert "".join(parts) == whole["content"]  # the parts are the export, in order, nothing missing
    with pytest.raises(RpcError) as caught:
        await client.call("experiments.export", experiment_id=experiment_id, format="json", part=first["parts"])
    assert caught.value.code == "invalid_params"
    await assert_alive(daemon)


async def test_cauldronctl_export_pages_through_an_experiment(
    daemon: Daemon, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of one image (instead of ~8 MiB) so three images need three replies, as 4,000 large ones would.
    monkeypatch.setattr(plugin_methods, "EXPORT_PAGE_IMAGES", 1)
    monkeypatch.setattr(plugin_methods, "EXPORT_PAGE_BYTES", 1)
    created = await client.call("experiments.create", name="export", base=FAST, axes={"seed": [1, 2, 3]})
    experiment_id = created["experiment"]["id"]
    await finished(client, experiment_id)
    images = (await client.call("images.list", experiment_id=experiment_id))["images"]
    pages, after = [], None
    for _ in range(len(images) + 1):  # bounded
        extra = {"after_image_id": after} if after is not None else {}
        page = await client.call("exports.run", format="comfyui-api", experiment_id=experiment_id, **extra)
        pages.append([item["filename"] for item in page["files"]])
        after = page["next_after_image_id"]
        if after is None:
            break
    expected = [f"image-{image['id']}.comfyui-api.json" for image in images]
    assert [name for page in pages for name in page] == expected  # each image once, in order
    assert len(pages) >= len(images)

    args = ["--url", url_of(daemon), "--token", token_of(daemon), "export", str(experiment_id)]
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, [*args, "--format", "comfyui-api", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    written = await asyncio.to_thread(lambda: sorted(path.name for path in tmp_path.glob("*.json")))
    assert written == sorted(expected)
    await assert_alive(daemon)
