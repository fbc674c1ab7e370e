"""engine = "ray" end to end: a real daemon dispatching to a private local Ray cluster (bound to this machine,
shut down after the module) with two CPU workers on the tiny model.

One cluster and one daemon for the module: each costs seconds on this machine. The tests run in file order and
build on each other's workers: the second worker joins during the first test's sweep; later tests kill workers.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Collection, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import ray
from cauldron_client import Client
from cauldron_client.cli import cli
from click.testing import CliRunner

from cauldrond.daemon import Daemon
from cauldrond.scaleout.dispatch import RayEngine
from cauldrond.scaleout.worker import MODELS_DIR_ENV
from tests.conftest import FAST, make_settings, token_of, url_of
from tests.waiting import finished, until

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def worker_models(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workers' own models dir (docs/scale-out.md: each node finds models in its own folder): the daemon's
    models, and a tiny-c whose UNet file differs from the daemon's."""
    folder = tmp_path_factory.mktemp("ray-worker-models")
    for name in ("tiny-sd", "tiny-a", "tiny-b", "tiny-c"):
        shutil.copytree(models / "tiny-sd", folder / name)
    with (folder / "tiny-c" / "unet" / "diffusion_pytorch_model.safetensors").open("ab") as unet:
        unet.write(b" ")
    return folder


@pytest.fixture(scope="module")
def ray_cluster(worker_models: Path) -> Iterator[None]:
    # Two CPUs: one per worker. Loopback for the node's address; no dashboard. The workers' environment names
    # their models dir, as `CAULDRON_MODELS_DIR=... ray start` does on a node.
    ray.init(
        address="local",  # a private cluster, never one another test module (or `ray start`) left running
        runtime_env={"env_vars": {MODELS_DIR_ENV: str(worker_models)}},
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
        namespace="shadow-cauldron-tests",
    )
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def models(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-sd, and copies of it under two more names (the same weights: other files, other models)."""
    folder = tmp_path_factory.mktemp("ray-models")
    for name in ("tiny-sd", "tiny-a", "tiny-b", "tiny-c"):
        shutil.copytree(models_dir / "tiny-sd", folder / name)
    return folder


@ray.remote(num_cpus=1)
class CpuHolder:
    """Holds one of the cluster's two CPUs, so the second worker can only start once it is killed."""

    def ready(self) -> bool:
        return True


@pytest.fixture(scope="module")
def holder(ray_cluster: None) -> Any:
    held = CpuHolder.remote()  # type: ignore[attr-defined]
    ray.get(held.ready.remote(), timeout=120)
    return held


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def daemon(holder: Any, models: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Daemon]:
    settings = make_settings(
        tmp_path_factory.mktemp("ray-data"),
        models,
        engine="ray",
        ray_cpu_workers=2,
        ray_worker_threads=1,
        max_batch_size=2,
    )
    running = Daemon(settings)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def client(daemon: Daemon) -> AsyncIterator[Client]:
    async with Client(url_of(daemon), token_of(daemon)) as connected:
        yield connected


def engine_of(daemon: Daemon) -> RayEngine:
    assert daemon.services is not None
    engine = daemon.services.engine
    assert isinstance(engine, RayEngine)
    return engine


async def workers(client: Client) -> list[dict[str, Any]]:
    info = await client.call("system.info")
    assert info["scaleout"]["connected"] is True
    result: list[dict[str, Any]] = info["scaleout"]["workers"]
    return result


async def ready_workers(client: Client, count: int) -> list[dict[str, Any]] | None:
    listed = [worker for worker in await workers(client) if worker["state"] == "ready"]
    return listed if len(listed) >= count else None


def store_rows(daemon: Daemon, experiment_id: int) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
    with sqlite3.connect(f"file:{daemon.settings.database_path}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        jobs = db.execute("SELECT * FROM jobs WHERE experiment_id = ? ORDER BY idx", (experiment_id,)).fetchall()
        images = db.execute("SELECT * FROM images WHERE experiment_id = ?", (experiment_id,)).fetchall()
    return jobs, images


def assert_each_job_done_once(
    daemon: Daemon,
    experiment_id: int,
    cells: int,
    done_events: Counter[int],
    interrupted: Collection[int] = (),
    judged: bool | None = True,
) -> None:
    """``interrupted``: the jobs of the batch a death broke; ``judged``: whether the crash guard judged that death
    (True: "its worker process has died"), or put the batch back as it was (False: Ray named an outside cause such
    as ``ray.kill`` or a dead node), or either (None: Ray's wording for a lost node depends on what it saw first)."""
    jobs, images = store_rows(daemon, experiment_id)
    assert len(jobs) == cells
    assert [job["status"] for job in jobs] == ["done"] * cells
    # One image row per job, one file per image, one job.done per job: none lost, none done twice.
    assert sorted(image["job_id"] for image in images) == sorted(job["id"] for job in jobs)
    assert done_events == Counter({job["id"]: 1 for job in jobs})
    folder = daemon.settings.images_dir / f"exp-{experiment_id:06d}"
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(Path(image["path"]).name for image in images)
    # A worker's death is judged by the crash guard's rules: the jobs of the batch it broke count one interruption
    # and became suspects (each then ran alone), with no strike; every other job ran once, untouched.
    outcomes = {job["id"]: (job["attempts"], job["suspect"], job["strikes"]) for job in jobs}
    allowed = {True: {(1, 1, 0)}, False: {(0, 0, 0)}, None: {(1, 1, 0), (0, 0, 0)}}[judged]
    for job_id, outcome in outcomes.items():
        assert outcome in (allowed if job_id in interrupted else {(0, 0, 0)}), (job_id, outcome, interrupted)


class DoneEvents:
    """Counts job.done events per job from before an experiment is created until ``close``."""

    def __init__(self, client: Client) -> None:
        self.counts: Counter[int] = Counter()
        self._client = client
        self._subscribed = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DoneEvents:
        self._task = asyncio.create_task(self._collect())
        await asyncio.wait_for(self._subscribed.wait(), 30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    def of(self, job_ids: set[int]) -> Counter[int]:
        return Counter({job_id: count for job_id, count in self.counts.items() if job_id in job_ids})

    async def _collect(self) -> None:
        async with self._client.events(["job.done"]) as stream:
            self._subscribed.set()
            while not self._stop.is_set():
                event = await stream.next(0.3)
                if event is not None:
                    self.counts[event["job_id"]] += 1


async def counts_of(client: Client, experiment_id: int) -> dict[str, int]:
    result: dict[str, int] = (await client.call("experiments.get", experiment_id=experiment_id))["experiment"]["counts"]
    return result


async def test_sweep_runs_each_cell_once_and_a_late_worker_gets_work(
    client: Client, daemon: Daemon, holder: Any
) -> None:
    # Only one worker fits at first: the holder has the other CPU.
    first = await until(lambda: ready_workers(client, 1), timeout=240)
    assert len(first) == 1 and len(await workers(client)) == 2
    async with DoneEvents(client) as done:
        created = await client.call("experiments.create", name="sweep", base=FAST, axes={"seed": list(range(1, 25))})
        experiment_id = created["experiment"]["id"]

        async def some_done() -> bool:
            return (await counts_of(client, experiment_id))["done"] >= 2

        await until(some_done, timeout=240)
        # Pause acts on remote batches: the running ones finish, the ready ones come back, nothing else starts.
        await client.call("queue.pause")

        async def drained() -> dict[str, int] | None:
            counts = await counts_of(client, experiment_id)
            return counts if counts["running"] == 0 else None

        paused_counts = await until(drained, timeout=120)
        assert paused_counts["queued"] > 0
        listed = await client.call("queue.list")
        assert listed["paused"] is True and listed["total"] == paused_counts["queued"]
        assert (await counts_of(client, experiment_id)) == paused_counts  # nothing started while paused
        # The second worker starts after the sweep began (its CPU is freed now) and is picked up while running.
        ray.kill(holder)
        both = await until(lambda: ready_workers(client, 2), timeout=240)
        assert len(both) == 2
        await client.call("queue.resume")
        result = await finished(client, experiment_id, timeout=240)
    assert result["experiment"]["counts"]["done"] == 24
    jobs, _ = store_rows(daemon, experiment_id)
    assert_each_job_done_once(daemon, experiment_id, 24, done.of({job["id"] for job in jobs}))
    per_worker = [worker["images"] for worker in await workers(client)]
    assert sum(per_worker) == 24 and all(count > 0 for count in per_worker), per_worker


async def test_two_models_on_two_workers_load_once_each(client: Client, daemon: Daemon) -> None:
    async def both_loaded_once() -> list[dict[str, Any]] | None:
        # Both ran the sweep: each has loaded tiny-sd (workers describe themselves every 2 s).
        listed = await ready_workers(client, 2)
        return listed if listed and all(worker["loads"] >= 1 for worker in listed) else None

    before = {worker["id"]: worker["loads"] for worker in await until(both_loaded_once, timeout=240)}
    await client.call("queue.pause")
    ids = []
    for model in ("tiny-a", "tiny-b"):
        created = await client.call(
            "experiments.create", name=model, base={**FAST, "model": model}, axes={"seed": [1, 2, 3, 4, 5, 6]}
        )
        ids.append(created["experiment"]["id"])
    await client.call("queue.resume")
    for experiment_id in ids:
        assert (await finished(client, experiment_id, timeout=240))["experiment"]["counts"]["done"] == 6

    async def reported() -> list[dict[str, Any]] | None:
        listed = await workers(client)
        new = [{m["name"] for m in worker["loaded_models"]} & {"tiny-a", "tiny-b"} for worker in listed]
        return listed if all(new) else None

    listed = await until(reported, timeout=30)
    loads = {worker["id"]: (worker["loads"], [m["name"] for m in worker["loaded_models"]]) for worker in listed}
    assert all(worker["loads"] == before[worker["id"]] + 1 for worker in listed), (before, loads)
    new_models = [{m["name"] for m in worker["loaded_models"]} & {"tiny-a", "tiny-b"} for worker in listed]
    assert sorted(map(sorted, new_models)) == [["tiny-a"], ["tiny-b"]], listed
    # Each worker reports the sha256 of what it loaded: the copies' files are the daemon's files.
    models = {m["name"]: m["sha256"] for m in (await client.call("models.list"))["models"]}
    for worker in listed:
        for loaded in worker["loaded_models"]:
            assert loaded["sha256"] == models[loaded["name"]]
    # cauldronctl status lists the workers with their models (the CLI's own loop runs on a thread of its own).
    args = ["--url", url_of(daemon), "--token", token_of(daemon), "status"]
    status = await asyncio.to_thread(CliRunner().invoke, cli, args, catch_exceptions=False)
    assert status.exit_code == 0, status.output
    assert "connected" in status.stdout and "tiny-a" in status.stdout and "tiny-b" in status.stdout
    assert all(worker["id"] in status.stdout for worker in listed), status.stdout


def folder_sha256(folder: Path) -> str:
    """A1111-style folder hash as documented (README, model hashes): sha256 over "path sha256" lines of the
    weight files, sorted by path; computed here with hashlib alone."""
    files = sorted(p for p in folder.rglob("*") if p.suffix == ".safetensors")
    lines = "".join(f"{p.relative_to(folder).as_posix()} {hashlib.sha256(p.read_bytes()).hexdigest()}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


async def test_a_node_whose_model_file_differs_refuses_it(
    client: Client, daemon: Daemon, models: Path, worker_models: Path
) -> None:
    ours, theirs = folder_sha256(models / "tiny-c"), folder_sha256(worker_models / "tiny-c")
    assert ours != theirs
    created = await client.call("experiments.create", name="mismatch", base={**FAST, "model": "tiny-c"})
    experiment_id = created["experiment"]["id"]
    result = await finished(client, experiment_id, timeout=120)
    assert result["experiment"]["counts"]["failed"] == 1
    jobs, images = store_rows(daemon, experiment_id)
    error = jobs[0]["last_error"]
    assert "'tiny-c'" in error and ours in error and theirs in error and "node " in error, error
    assert images == []
    listed = await workers(client)
    assert all("tiny-c" in worker["refused"] for worker in listed)
    assert all("tiny-c" not in {m["name"] for m in worker["loaded_models"]} for worker in listed)


async def test_cancel_stops_a_remote_batch_at_its_next_step(client: Client, daemon: Daemon) -> None:
    steps = 400  # seconds on a worker: long enough to cancel while it runs
    created = await client.call("experiments.create", name="long", base={**FAST, "steps": steps}, axes={"seed": [1, 2]})
    experiment_id = created["experiment"]["id"]
    async with client.events(["job.progress"]) as stream:
        while True:
            event = await stream.next(120)
            assert event is not None, "no progress from the remote batch"
            if event["experiment_id"] == experiment_id and event["step"] >= 2:
                break
        cancelled = await client.call("experiments.cancel", experiment_id=experiment_id)
        # Both cells share one batch, running on a worker: none was left queued, both are being stopped.
        assert cancelled["experiment"]["id"] == experiment_id
        assert cancelled["cancelled"] == 0 and cancelled["stopping"] == 2
        result = await finished(client, experiment_id, timeout=120)
    assert result["experiment"]["counts"]["cancelled"] == 2
    jobs, images = store_rows(daemon, experiment_id)
    assert [job["status"] for job in jobs] == ["cancelled", "cancelled"] and images == []
    # Stopped between steps, long before its 400th: no file was written for it.
    assert not list((daemon.settings.images_dir / f"exp-{experiment_id:06d}").glob("*.png"))
    assert engine_of(daemon).running_jobs == []


async def kill_mid_batch(client: Client, daemon: Daemon, kill: Any, judged: bool) -> None:
    """Start an 8-cell sweep, kill the worker of the first batch that reports progress, check the outcome."""
    engine = engine_of(daemon)
    async with DoneEvents(client) as done:
        created = await client.call(
            "experiments.create", name="kill", base={**FAST, "steps": 40}, axes={"seed": list(range(1, 9))}
        )
        experiment_id = created["experiment"]["id"]
        async with client.events(["job.progress"]) as stream:
            while True:
                event = await stream.next(120)
                assert event is not None, "no progress from a remote batch"
                if event["experiment_id"] == experiment_id and event["step"] >= 1:
                    break
        slot = engine.batches.holding(event["job_id"])
        assert slot is not None and slot.handle is not None
        (broken,) = [batch for batch in engine.batches.in_flight() if batch.started and batch.slot is slot]
        deaths = len(slot.deaths)
        kill(slot)
        result = await finished(client, experiment_id, timeout=240)
    assert result["experiment"]["counts"]["done"] == 8
    jobs, _ = store_rows(daemon, experiment_id)
    interrupted = {job.job_id for job in broken.jobs}
    assert_each_job_done_once(daemon, experiment_id, 8, done.of({job["id"] for job in jobs}), interrupted, judged)
    assert len(slot.deaths) == deaths + 1
    # The worker comes back (Ray restarts it, or the pool makes a new one) and is listed ready again.
    await until(lambda: ready_workers(client, 2), timeout=240)


async def test_worker_ray_killed_mid_batch_loses_and_duplicates_nothing(client: Client, daemon: Daemon) -> None:
    await until(lambda: ready_workers(client, 2), timeout=240)
    # Ray says who did it ("killed by `ray.kill`"): the batch goes back as it was, no suspect.
    await kill_mid_batch(client, daemon, lambda slot: ray.kill(slot.handle, no_restart=True), judged=False)


async def test_worker_process_sigkilled_mid_batch_loses_and_duplicates_nothing(client: Client, daemon: Daemon) -> None:
    await until(lambda: ready_workers(client, 2), timeout=240)
    # "its worker process has died": a kill and a fault look the same, so the crash guard judges it.
    await kill_mid_batch(client, daemon, lambda slot: os.kill(int(slot.info["pid"]), signal.SIGKILL), judged=True)


async def test_a_higher_priority_experiment_takes_back_the_batches_waiting_on_workers(
    client: Client, daemon: Daemon
) -> None:
    """Locally, an experiment created above the running one's priority runs as soon as the running batch ends.
    Remotely each worker also holds a batch waiting behind its running one; those come back to the queue, so the
    higher priority runs next on every worker, not after the waiting batches."""
    await until(lambda: ready_workers(client, 2), timeout=240)
    engine = engine_of(daemon)
    slow = {**FAST, "steps": 80}  # a batch lasts long enough to see both workers full (about a second each)
    low = await client.call("experiments.create", name="low", base=slow, axes={"seed": list(range(1, 17))})
    low_id = low["experiment"]["id"]

    async def both_workers_full() -> bool:
        batches = engine.batches.in_flight()
        return sum(b.started for b in batches) == 2 and sum(not b.started for b in batches) == 2

    await until(both_workers_full, timeout=120)
    async with client.events(["job.started"]) as stream:
        waiting = [batch for batch in engine.batches.in_flight() if not batch.started]
        high = await client.call("experiments.create", name="high", base=slow, axes={"seed": [1, 2, 3, 4]}, priority=10)
        high_id = high["experiment"]["id"]
        # A waiting batch that began before the high experiment existed (its worker's running batch ended in
        # these milliseconds) runs on, rightly; the others are the ones that must come back.
        low_waiting = {job.job_id for batch in waiting if not batch.started for job in batch.jobs}
        assert low_waiting, "both waiting batches began before the high experiment was created"
        started: list[tuple[int, int]] = []
        while sum(1 for experiment, _ in started if experiment == high_id) < 4:
            event = await stream.next(240)
            assert event is not None, "the high-priority experiment did not start"
            started.append((event["experiment_id"], event["job_id"]))
    first_high = next(position for position, (experiment, _) in enumerate(started) if experiment == high_id)
    before_high = {job_id for experiment, job_id in started[:first_high] if experiment == low_id}
    assert not before_high & low_waiting, (started, low_waiting)
    await finished(client, low_id, timeout=240)
    await finished(client, high_id, timeout=60)
    for experiment_id, cells in ((low_id, 16), (high_id, 4)):
        jobs, images = store_rows(daemon, experiment_id)
        assert [job["status"] for job in jobs] == ["done"] * cells
        assert sorted(image["job_id"] for image in images) == sorted(job["id"] for job in jobs)
