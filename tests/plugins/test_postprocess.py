"""Post-processing runs off the GPU path: a slow, failing or hanging plugin never delays the next generation;
failures and timeouts are recorded per image and plugin and visible over RPC."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from cauldrond.plugins.postprocess import InvalidAnnotations, validate_annotations
from tests.conftest import FAST
from tests.plugins.conftest import StartDaemon
from tests.plugins.sample_plugins import AsyncTagger, Blocker, Hanger, Liar, Raiser, Tagger, source
from tests.waiting import finished


async def test_slow_failing_and_hanging_plugins_never_delay_generation(start_daemon: StartDaemon) -> None:
    blocker = Blocker()
    plugins = [
        source("blocker", blocker),
        source("raiser", Raiser()),
        source("hanger", Hanger(seconds=1.5)),
        source("liar", Liar()),
        source("async_tagger", AsyncTagger()),
    ]
    hanger_timeout = {"hanger": {"process_timeout_s": 0.2}}
    async with start_daemon(plugins, max_batch_size=1, plugin_settings=hanger_timeout) as (daemon, client):
        try:
            created = await client.call("experiments.create", name="two", base=FAST, axes={"seed": [1, 2]})
            experiment = await finished(client, created["experiment"]["id"])
            # Both images were generated one after the other while the blocker still holds the first one.
            assert experiment["experiment"]["counts"]["done"] == 2
            assert blocker.started.is_set() and not blocker.release.is_set()
            first, second = sorted(job["image_id"] for job in experiment["jobs"])
            assert blocker.calls[0] == first
        finally:
            blocker.release.set()
        assert daemon.services is not None and daemon.services.postprocess is not None
        assert await daemon.services.postprocess.wait_idle(30)

        found = await client.call("images.annotations", image_id=first)
        assert found["annotations"] == {"async_tagger": {"seed": "1"}, "blocker": {"blocked": "released"}}
        runs = {run["plugin"]: run for run in found["runs"]}
        assert runs["blocker"]["status"] == "ok" and runs["async_tagger"]["status"] == "ok"
        assert runs["raiser"]["status"] == "failed"
        assert runs["raiser"]["error"] == f"RuntimeError: cannot handle image {first}"
        assert runs["hanger"] == {**runs["hanger"], "status": "timeout", "error": "no result within 0.2 s"}
        assert runs["liar"]["status"] == "failed" and "at most 16384" in runs["liar"]["error"]
        # The hanger's first call still holds its thread: the second is skipped rather than queued behind it.
        second_runs = {run["plugin"]: run for run in (await client.call("images.annotations", image_id=second))["runs"]}
        assert second_runs["hanger"]["status"] in ("timeout", "failed")

        listed = {p["name"]: p for p in (await client.call("plugins.list"))["plugins"]}
        assert listed["raiser"]["postprocess"]["failed"] == 2
        assert listed["async_tagger"]["postprocess"]["ok"] == 2
        assert listed["blocker"]["postprocess"]["ok"] == 2
        hanger = listed["hanger"]["postprocess"]
        assert hanger["timeout"] >= 1 and hanger["timeout"] + hanger["failed"] == 2


async def test_queued_work_lost_at_shutdown_is_reported(
    start_daemon: StartDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = Blocker()
    with caplog.at_level(logging.WARNING, logger="cauldrond.plugins.postprocess"):
        try:
            async with start_daemon([source("blocker", blocker)]) as (daemon, client):
                created = await client.call("generate", **FAST)
                await finished(client, created["experiment"]["id"])
                assert await asyncio.to_thread(blocker.started.wait, 30)
                assert daemon.services is not None and daemon.services.postprocess is not None
                assert daemon.services.postprocess.pending == 1
        finally:
            blocker.release.set()
    assert any("1 queued or running call(s) lost at shutdown" in r.getMessage() for r in caplog.records)


async def test_annotations_of_an_unknown_image_are_not_found(start_daemon: StartDaemon) -> None:
    from cauldron_client.errors import RpcError

    async with start_daemon([source("tagger", Tagger())]) as (_, client):
        with pytest.raises(RpcError) as caught:
            await client.call("images.annotations", image_id=999)
        assert caught.value.code == "not_found"


@pytest.mark.parametrize(
    "value",
    [["a"], {"": "x"}, {"k": 1}, {str(n): "v" for n in range(33)}, {"k" * 65: "v"}, {"k": "v" * 16_385}],
)
def test_annotations_are_validated(value: Any) -> None:
    with pytest.raises(InvalidAnnotations):
        validate_annotations(value)


def test_valid_annotations_pass() -> None:
    assert validate_annotations(None) == {}
    assert validate_annotations({"tags": "a, b"}) == {"tags": "a, b"}


async def test_no_post_processor_no_runs(start_daemon: StartDaemon) -> None:
    async with start_daemon() as (daemon, client):
        created = await client.call("generate", **FAST)
        experiment = await finished(client, created["experiment"]["id"])
        found = await client.call("images.annotations", image_id=experiment["jobs"][0]["image_id"])
        assert found == {"image_id": experiment["jobs"][0]["image_id"], "annotations": {}, "runs": []}
        assert daemon.services is not None and daemon.services.postprocess is not None
        assert daemon.services.postprocess.pending == 0


async def test_a_hung_plugin_does_not_hold_up_stop(start_daemon: StartDaemon) -> None:
    hung = {"hanger": {"process_timeout_s": 0.2}}
    hanger = Hanger(seconds=30)
    try:
        async with start_daemon([source("hanger", hanger)], plugin_settings=hung) as (daemon, client):
            created = await client.call("generate", **FAST)
            await finished(client, created["experiment"]["id"])
            assert daemon.services is not None and daemon.services.postprocess is not None
            runner = daemon.services.postprocess
            assert await runner.wait_idle(10)
            assert runner.hung_threads == 1
            listed = await client.call("plugins.list")
            assert listed["postprocess"]["hung"] == 1
        # The daemon has stopped while the plugin's call is still held: stop did not wait for it. A stop that
        # joined the thread would return only after the 30 s hold, with the call returned.
        assert not hanger.returned.is_set()
    finally:
        hanger.release.set()
