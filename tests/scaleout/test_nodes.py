"""Nodes joining and leaving a Ray cluster while the daemon runs: a multi-node cluster on this machine (Ray's own
``cluster_utils.Cluster``: a head and extra raylets, each a node with its own id), joined by the daemon through
``ray_address`` as it would join a LAN cluster. One CPU worker per node."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cauldron_client import Client
from ray.cluster_utils import Cluster

from cauldrond.daemon import Daemon
from cauldrond.scaleout.dispatch import RayEngine
from tests.conftest import FAST, make_settings, token_of, url_of
from tests.scaleout.test_ray_engine import DoneEvents, assert_each_job_done_once, counts_of, store_rows
from tests.waiting import finished, until

pytestmark = pytest.mark.asyncio(loop_scope="module")
NODE = {"num_cpus": 1, "include_dashboard": False}
DEATHS_TO_DROP = 3  # docs/scale-out.md: a worker that dies 3 times in 10 minutes is dropped


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    running = Cluster(initialize_head=True, head_node_args=NODE)
    try:
        yield running
    finally:
        running.shutdown()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def daemon(cluster: Cluster, models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Daemon]:
    models = tmp_path_factory.mktemp("node-models")
    shutil.copytree(models_dir / "tiny-sd", models / "tiny-sd")
    settings = make_settings(
        tmp_path_factory.mktemp("node-data"),
        models,
        engine="ray",
        ray_address=cluster.address,
        ray_cpu_workers=1,
        ray_worker_threads=1,
        max_batch_size=2,
    )
    running = Daemon(settings)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()  # it joined the cluster: it disconnects, the cluster stays the fixture's


@pytest_asyncio.fixture(loop_scope="module")
async def client(daemon: Daemon) -> AsyncIterator[Client]:
    async with Client(url_of(daemon), token_of(daemon)) as connected:
        yield connected


async def ready(client: Client, count: int) -> list[dict[str, Any]] | None:
    info = await client.call("system.info")
    listed = [worker for worker in info["scaleout"]["workers"] if worker["state"] == "ready"]
    return listed if len(listed) >= count else None


async def test_a_node_that_joins_mid_sweep_gets_work(client: Client, daemon: Daemon, cluster: Cluster) -> None:
    await until(lambda: ready(client, 1), timeout=240)
    async with DoneEvents(client) as done:
        created = await client.call("experiments.create", name="join", base=FAST, axes={"seed": list(range(1, 17))})
        experiment_id = created["experiment"]["id"]

        async def some_done() -> bool:
            return (await counts_of(client, experiment_id))["done"] >= 2

        await until(some_done, timeout=240)
        await client.call("queue.pause")  # so that the sweep cannot end before the new node's worker is up
        cluster.add_node(**NODE)
        both = await until(lambda: ready(client, 2), timeout=240)
        assert len({worker["node"] + worker["id"].split("/")[0] for worker in both}) == 2  # two nodes
        await client.call("queue.resume")
        await finished(client, experiment_id, timeout=240)
    jobs, _ = store_rows(daemon, experiment_id)
    assert_each_job_done_once(daemon, experiment_id, 16, done.of({job["id"] for job in jobs}))
    info = await client.call("system.info")
    assert all(worker["images"] > 0 for worker in info["scaleout"]["workers"]), info["scaleout"]["workers"]


async def test_a_node_lost_mid_batch_gives_its_jobs_back(client: Client, daemon: Daemon, cluster: Cluster) -> None:
    engine = daemon.services.engine if daemon.services else None
    assert isinstance(engine, RayEngine)
    (joined,) = cluster.worker_nodes
    async with DoneEvents(client) as done:
        created = await client.call(
            "experiments.create", name="lost", base={**FAST, "steps": 40}, axes={"seed": list(range(1, 9))}
        )
        experiment_id = created["experiment"]["id"]
        async with client.events(["job.progress"]) as stream:
            while True:  # until a batch on the joined node reports progress
                event = await stream.next(120)
                assert event is not None, "no progress from the joined node"
                slot = engine.batches.holding(event["job_id"])
                if slot is not None and slot.node.node_id == joined.node_id:
                    break
        (broken,) = [batch for batch in engine.batches.in_flight() if batch.started and batch.slot is slot]
        cluster.remove_node(joined, allow_graceful=False)
        await finished(client, experiment_id, timeout=240)
    jobs, _ = store_rows(daemon, experiment_id)
    interrupted = {job.job_id for job in broken.jobs}
    assert_each_job_done_once(daemon, experiment_id, 8, done.of({job["id"] for job in jobs}), interrupted, None)

    async def gone() -> list[dict[str, Any]] | None:
        listed: list[dict[str, Any]] = (await client.call("system.info"))["scaleout"]["workers"]
        return listed if any(worker["state"] == "gone" for worker in listed) else None

    listed = await until(gone, timeout=60)
    assert [worker["state"] for worker in listed].count("ready") == 1


async def test_a_worker_that_keeps_dying_is_dropped_with_its_reason(client: Client, daemon: Daemon) -> None:
    """The head's worker (the only one left) is SIGKILLed three times, each time under a fresh batch of two: Ray
    restarts it twice, the third death drops it. No death is blamed on a job (none ran alone as a suspect), so each
    counts against the worker; the last batch's jobs wait in the queue as suspects, with no strike."""
    engine = daemon.services.engine if daemon.services else None
    assert isinstance(engine, RayEngine)
    experiment_id = 0
    for round_ in range(DEATHS_TO_DROP):
        await until(lambda: ready(client, 1), timeout=240)
        if experiment_id:  # the last round's jobs are suspects now and would run alone first: not this test's
            await client.call("experiments.cancel", experiment_id=experiment_id)
        created = await client.call(
            "experiments.create", name=f"doomed {round_}", base={**FAST, "steps": 400}, axes={"seed": [1, 2]}
        )
        experiment_id = created["experiment"]["id"]
        async with client.events(["job.progress"]) as stream:
            while True:
                event = await stream.next(240)
                assert event is not None, "no progress from the worker"
                if event["experiment_id"] == experiment_id:
                    break
        slot = engine.batches.holding(event["job_id"])
        assert slot is not None
        os.kill(int(slot.info["pid"]), signal.SIGKILL)

    async def dropped() -> list[dict[str, Any]] | None:
        listed: list[dict[str, Any]] = (await client.call("system.info"))["scaleout"]["workers"]
        return [worker for worker in listed if worker["state"] == "dropped"] or None

    (worker,) = await until(dropped, timeout=120)
    assert worker["reason"].startswith(f"died {DEATHS_TO_DROP} times in 10 min; last: "), worker["reason"]
    counts = await counts_of(client, experiment_id)
    assert counts["queued"] == 2 and counts["running"] == 0
    jobs, images = store_rows(daemon, experiment_id)
    assert [(job["attempts"], job["suspect"], job["strikes"]) for job in jobs] == [(1, 1, 0)] * 2 and images == []
