"""GET /metrics: a real scrape over HTTP with the token, parsed by prometheus_client's own text parser, after a
real generation on the tiny model. Every expected figure is what the test itself did, counted by hand: the
images it asked for, the batches max_batch_size makes of them, the RPC calls it made."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cauldron_client import Client
from cauldron_client.errors import RpcError
from prometheus_client.parser import text_string_to_metric_families

from cauldrond.daemon import Daemon
from tests.conftest import FAST, make_settings, token_of, url_of
from tests.plugins.sample_plugins import Raiser, Tagger, source
from tests.waiting import until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(daemon: Daemon, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url_of(daemon) + "/metrics", headers=headers or {}) as reply,
    ):
        return reply.status, reply.headers.get("Content-Type", ""), await reply.text()


async def samples_of(daemon: Daemon) -> Samples:
    status, content_type, text = await scrape(daemon, {"Authorization": f"Bearer {token_of(daemon)}"})
    assert status == 200, text
    assert content_type.startswith("text/plain")
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


class CountingClient:
    """Makes the test's RPC calls and counts them by (method, code) itself: the expected figures."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.calls: Counter[tuple[str, str]] = Counter()

    async def call(self, method: str, **params: Any) -> Any:
        try:
            result = await self.client.call(method, **params)
        except RpcError as exc:
            self.calls[(method, exc.code)] += 1
            raise
        self.calls[(method, "ok")] += 1
        return result

    async def finished(self, experiment_id: int) -> None:
        async def done() -> bool:
            got = await self.call("experiments.get", experiment_id=experiment_id, jobs_limit=0)
            counts = got["experiment"]["counts"]
            return bool(counts["queued"] == 0 and counts["running"] == 0)

        await until(done, timeout=120)


@pytest.fixture
async def started(tmp_path: Path, models_dir: Path) -> AsyncIterator[Daemon]:
    plugins = (source("tagger", Tagger()), source("raiser", Raiser()))
    settings = make_settings(tmp_path / "data", models_dir, plugins="diffusers,tagger,raiser", max_batch_size=4)
    daemon = Daemon(settings, extra_plugins=plugins)
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()


async def test_metrics_count_the_generation_and_the_rpc_calls_the_test_made(
    started: Daemon, tmp_path: Path, models_dir: Path
) -> None:
    async with Client(url_of(started), token_of(started)) as raw:
        client = CountingClient(raw)
        # 6 cells sharing model, sampler, steps and size: batches of 4 and 2 (max_batch_size 4); then 1 more.
        created = await client.call("experiments.create", name="six", base=FAST, axes={"seed": [1, 2, 3, 4, 5, 6]})
        await client.finished(created["experiment"]["id"])
        single = await client.call("generate", **{**FAST, "seed": 7})
        await client.finished(single["experiment"]["id"])
        with pytest.raises(RpcError):
            await client.call("experiments.get", experiment_id=987654)
        with pytest.raises(RpcError):
            await client.call("experiments.get", experiment_id="not a number")
        with pytest.raises(RpcError):
            await client.call("no.such_method")
        services = started.services
        assert services is not None and services.postprocess is not None
        assert await services.postprocess.wait_idle(30)

        samples = await samples_of(started)

        assert value(samples, "cauldron_images_total") == 7
        assert value(samples, "cauldron_jobs_finished_total", outcome="done") == 7
        assert value(samples, "cauldron_jobs_finished_total", outcome="failed") == 0
        # Batch sizes 4, 2 and 1.
        assert value(samples, "cauldron_batch_size_count") == 3
        assert value(samples, "cauldron_batch_size_sum") == 7
        assert value(samples, "cauldron_batch_size_bucket", le="1.0") == 1
        assert value(samples, "cauldron_batch_size_bucket", le="2.0") == 2
        assert value(samples, "cauldron_batch_size_bucket", le="4.0") == 3
        # 2 steps per batch; the first step also encodes the prompts, so each batch gives one step time.
        assert value(samples, "cauldron_denoising_step_seconds_count") == 3
        assert value(samples, "cauldron_denoising_step_seconds_sum") > 0
        # One model, loaded once.
        assert value(samples, "cauldron_model_load_seconds_count", provider="diffusers") == 1

        # The RPC calls, exactly as the test counted them (codes from the replies it got).
        assert client.calls[("experiments.get", "not_found")] == 1
        assert client.calls[("experiments.get", "invalid_params")] == 1
        assert client.calls[("no.such_method", "method_not_found")] == 1
        for (method, code), count in client.calls.items():
            label = "unknown" if method == "no.such_method" else method
            assert value(samples, "cauldron_rpc_requests_total", method=label, code=code) == count, (method, code)
        gets = sum(count for (method, _), count in client.calls.items() if method == "experiments.get")
        assert value(samples, "cauldron_rpc_request_seconds_count", method="experiments.get") == gets
        listed = {labels for name, labels in samples if name == "cauldron_rpc_requests_total"}
        assert all(dict(labels)["method"] != "no.such_method" for labels in listed)

        # Post-processing: the tagger succeeded on each image, the raiser failed on each.
        assert value(samples, "cauldron_postprocess_runs_total", plugin="tagger", outcome="ok") == 7
        assert value(samples, "cauldron_postprocess_runs_total", plugin="raiser", outcome="failed") == 7
        assert value(samples, "cauldron_postprocess_runs_total", plugin="raiser", outcome="ok") == 0

        # State read at scrape time: nothing waits, this client's one connection is open, a fresh data dir
        # needed no recovery, nothing was quarantined.
        assert value(samples, "cauldron_queue_jobs", status="queued") == 0
        assert value(samples, "cauldron_queue_jobs", status="running") == 0
        assert value(samples, "cauldron_queue_paused", cause="owner") == 0
        assert value(samples, "cauldron_queue_paused", cause="storage") == 0
        assert value(samples, "cauldron_engine_restarts_total") == 0
        assert value(samples, "cauldron_engine_up") == 1
        assert value(samples, "cauldron_rpc_connections") == 1
        assert value(samples, "cauldron_recovery_items", item="requeued") == 0
        assert value(samples, "cauldron_crash_guard_events_total", kind="quarantine") == 0
        assert value(samples, "cauldron_crash_guard_events_total", kind="suspect") == 0

        # Free space, against statvfs of the images folder (other processes write to this disk: 5% slack).
        stat = os.statvfs(started.settings.images_dir)
        free = value(samples, "cauldron_disk_free_bytes")
        assert abs(free - stat.f_bavail * stat.f_frsize) <= 0.05 * stat.f_blocks * stat.f_frsize
        assert free == pytest.approx(shutil.disk_usage(started.settings.images_dir).free, rel=0.05)
        # On CPU the generator's memory is this process's resident set (the daemon runs in-process here).
        in_use = value(samples, "cauldron_device_memory_bytes", device="cpu")
        assert in_use > 50 * 2**20  # torch and the tiny model are loaded
        assert value(samples, "cauldron_device_memory_peak_bytes", device="cpu") >= in_use
        assert value(samples, "process_resident_memory_bytes") > 0

        # A paused queue with work in it.
        await client.call("queue.pause")
        await client.call("experiments.create", name="waiting", base=FAST, axes={"seed": [8, 9, 10]})
        samples = await samples_of(started)
        assert value(samples, "cauldron_queue_jobs", status="queued") == 3
        assert value(samples, "cauldron_queue_paused", cause="owner") == 1
        assert value(samples, "cauldron_queue_paused", cause="storage") == 0

        # A second daemon in this process has its own figures, not the first one's.
        other = Daemon(make_settings(tmp_path / "other", models_dir))
        await other.start()
        try:
            fresh = await samples_of(other)
            assert value(fresh, "cauldron_images_total") == 0
            assert value(fresh, "cauldron_rpc_connections") == 0
            assert not [key for key in fresh if key[0] == "cauldron_rpc_requests_total"]
        finally:
            await other.stop()
        assert value(await samples_of(started), "cauldron_images_total") == 7


async def test_metrics_need_the_token(started: Daemon) -> None:
    for headers in (None, {"Authorization": "Bearer not-the-token"}, {"Authorization": "Basic eDp5"}):
        status, _, text = await scrape(started, headers)
        assert status == 401, headers
        assert "cauldron_" not in text
