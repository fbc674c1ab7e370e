"""experiments.retry and `cauldronctl experiments retry` against a real daemon: failed and cancelled jobs come
back with their own params and seed, and a refused retry changes nothing."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client, RpcError
from cauldron_client.cli import cli
from click.testing import CliRunner

from cauldrond.daemon import Daemon
from tests.conftest import FAST, make_settings, token_of, url_of
from tests.waiting import finished


@pytest.fixture
async def own_models(tmp_path: Path, models_dir: Path) -> Path:
    """A models folder of this test's own, so a model can be taken away and given back."""
    folder = tmp_path / "models"
    await asyncio.to_thread(shutil.copytree, models_dir, folder, symlinks=True)
    return folder


@pytest.fixture
async def session(tmp_path: Path, own_models: Path) -> AsyncIterator[tuple[Daemon, Client]]:
    daemon = Daemon(make_settings(tmp_path / "data", own_models))
    await daemon.start()
    try:
        async with Client(url_of(daemon), token_of(daemon)) as client:
            yield daemon, client
    finally:
        await daemon.stop()


async def jobs_of(client: Client, experiment_id: int) -> dict[int, dict[str, Any]]:
    result = await client.call("experiments.get", experiment_id=experiment_id)
    return {job["id"]: job for job in result["jobs"]}


async def test_failed_jobs_retried_keep_params_and_seed(session: tuple[Daemon, Client], own_models: Path) -> None:
    _daemon, client = session
    await client.call("queue.pause")
    created = await client.call("experiments.create", base={**FAST, "seed": -1}, axes={"cfg_scale": [3, 7]})
    experiment_id = created["experiment"]["id"]
    before = await jobs_of(client, experiment_id)
    # The model goes away between queueing and running: every job fails at load, through no fault of its own.
    hidden = own_models.parent / "hidden"
    (own_models / "tiny-sd").rename(hidden)
    await client.call("queue.resume")
    await finished(client, experiment_id)
    failed = await jobs_of(client, experiment_id)
    assert {job["status"] for job in failed.values()} == {"failed"}

    hidden.rename(own_models / "tiny-sd")
    result = await client.call("experiments.retry", experiment_id=experiment_id, statuses=["failed"])
    assert result["requeued"] == 2 and sorted(result["job_ids"]) == sorted(before)
    done = await finished(client, experiment_id)
    assert done["experiment"]["counts"]["done"] == 2
    after = await jobs_of(client, experiment_id)
    for job_id, job in after.items():
        assert job["status"] == "done" and job["last_error"] is None
        assert job["params"] == before[job_id]["params"]  # the seed drawn at creation included
        image = await client.call("images.get", image_id=job["image_id"])
        assert image["image"]["seed"] == before[job_id]["params"]["seed"]


async def test_a_cancelled_experiment_comes_back_and_a_bad_retry_changes_nothing(
    session: tuple[Daemon, Client],
) -> None:
    daemon, client = session
    await client.call("queue.pause")
    first = (await client.call("experiments.create", base=FAST, axes={"steps": [1, 2, 3]}))["experiment"]["id"]
    other = (await client.call("experiments.create", base=FAST, axes={"steps": [1, 2]}))["experiment"]["id"]
    await client.call("experiments.cancel", experiment_id=first)
    await client.call("experiments.cancel", experiment_id=other)
    cancelled = await jobs_of(client, first)
    strangers = list(await jobs_of(client, other))

    # A job of another experiment, or asking for done jobs: refused whole, nothing moves.
    with pytest.raises(RpcError) as refused:
        await client.call("experiments.retry", experiment_id=first, job_ids=[*list(cancelled)[:1], strangers[0]])
    assert refused.value.code == "invalid_params" and str(strangers[0]) in refused.value.message
    with pytest.raises(RpcError) as wrong_status:
        await client.call("experiments.retry", experiment_id=first, statuses=["done"])
    assert wrong_status.value.code == "invalid_params"
    with pytest.raises(RpcError) as missing:
        await client.call("experiments.retry", experiment_id=first + other + 100)
    assert missing.value.code == "not_found"
    assert await jobs_of(client, first) == cancelled
    assert (await client.call("queue.list"))["total"] == 0

    # Through the CLI, as a user would: only the chosen job, then the rest.
    runner = CliRunner()
    base = ["--url", url_of(daemon), "--token", token_of(daemon)]
    chosen = sorted(cancelled)[1]
    one = await asyncio.to_thread(
        runner.invoke, cli, [*base, "experiments", "retry", str(first), "--cancelled", "--job", str(chosen)]
    )
    assert one.exit_code == 0, one.output
    assert "1 job(s) queued again" in one.output
    assert (await client.call("queue.list"))["total"] == 1
    rest = await asyncio.to_thread(runner.invoke, cli, [*base, "experiments", "retry", str(first)])
    assert rest.exit_code == 0 and "2 job(s) queued again" in rest.output
    await client.call("queue.resume")
    done = await finished(client, first)
    assert done["experiment"]["status"] == "done" and done["experiment"]["counts"]["done"] == 3
    # The other experiment stayed cancelled.
    assert {job["status"] for job in (await jobs_of(client, other)).values()} == {"cancelled"}
