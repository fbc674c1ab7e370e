"""Auto batch size in a real daemon on the tiny model: the first sweep probes on its own cells and records a choice
in the database, a restarted daemon takes batches of the recorded size without probing, the bound always holds,
and a probe that runs out of accelerator memory (torch's real error, raised by a forward hook on the UNet as a GPU
would when the batch is too large) backs off with every cell done."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import torch
from cauldron_client import Client
from diffusers import UNet2DConditionModel

from cauldrond.daemon import Daemon
from tests.conftest import FAST, make_settings, token_of, url_of
from tests.waiting import finished


@asynccontextmanager
async def running(data_dir: Path, models_dir: Path, **overrides: Any) -> AsyncIterator[tuple[Daemon, Client]]:
    daemon = Daemon(make_settings(data_dir, models_dir, auto_batch_size=True, **overrides))
    await daemon.start()
    try:
        async with Client(url_of(daemon), token_of(daemon)) as client:
            yield daemon, client
    finally:
        await daemon.stop()


async def sweep_batches(client: Client, seeds: int, **base: Any) -> tuple[list[int], dict[str, Any]]:
    """Runs one experiment of ``seeds`` cells that can all share a batch; the size of each batch the engine
    started, in order, and the finished experiment."""
    sizes: list[int] = []
    seen: set[int] = set()
    async with client.events(["job.started"]) as stream:
        await stream.start()
        created = await client.call(
            "experiments.create", name="sweep", base={**FAST, **base}, axes={"seed": list(range(1, seeds + 1))}
        )
        experiment_id = created["experiment"]["id"]
        while len(seen) < seeds:
            event = await stream.next(120)
            assert event is not None, f"only {len(seen)} of {seeds} jobs started"
            if event["job_id"] not in seen:
                seen.update(event["batch"])
                sizes.append(len(event["batch"]))
    return sizes, await finished(client, experiment_id)


def recorded(database: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as db:
        return db.execute(
            "SELECT model, width, height, device, batch_size, probed_up_to, images_per_s, measured_at FROM batch_sizes"
        ).fetchall()


async def test_the_first_sweep_probes_and_records_a_choice_that_a_restart_reuses(
    tmp_path: Path, models_dir: Path
) -> None:
    data = tmp_path / "data"
    async with running(data, models_dir) as (daemon, client):
        sizes, result = await sweep_batches(client, 12)
        database = daemon.settings.database_path
    assert result["experiment"]["counts"]["done"] == 12
    rows = recorded(database)
    assert len(rows) == 1
    model, width, height, device, chosen, bound, rate, measured_at = rows[0]
    assert (model, width, height, bound) == ("tiny-sd", 64, 64, 4) and device.startswith("cpu:")
    assert chosen in (1, 2, 4) and rate > 0
    # Downward from the bound (4, then 2, then 1 unless 4 already beat 2 by 5%), then the choice for the rest.
    probe = [4, 2] if chosen == 4 else [4, 2, 1]
    assert sizes[: len(probe)] == probe
    rest = sizes[len(probe) :]
    assert all(size == chosen for size in rest[:-1]) and 1 <= rest[-1] <= chosen and sum(sizes) == 12

    # A size no probe from 4 would pick: a restart that batches by 3 reads it from the database.
    with sqlite3.connect(database) as db:
        db.execute("UPDATE batch_sizes SET batch_size = 3")
    async with running(data, models_dir) as (daemon, client):
        sizes, result = await sweep_batches(client, 7)
        assert daemon.services.engine.batch_sizes.probe_batches == 0
        plan = await client.call("experiments.plan", base=FAST, axes={"seed": list(range(1, 8))})
    assert sizes == [3, 3, 1] and result["experiment"]["counts"]["done"] == 7
    assert plan["batches"] == 3, "the plan batches as the engine does"
    assert recorded(database)[0][-1] == measured_at, "not measured again"

    # A lower bound holds over the recorded size.
    async with running(data, models_dir, max_batch_size=2) as (_, client):
        sizes, result = await sweep_batches(client, 5)
    assert sizes == [2, 2, 1] and result["experiment"]["counts"]["done"] == 5


@contextmanager
def unet_memory(most_rows: int) -> Iterator[list[int]]:
    """Every UNet call over more than ``most_rows`` latent rows runs out of memory, as a GPU would; yields the
    row counts of the calls that failed."""
    failed: list[int] = []

    def hook(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if isinstance(module, UNet2DConditionModel) and args and args[0].shape[0] > most_rows:
            failed.append(int(args[0].shape[0]))
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {args[0].shape[0]} GiB")

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        yield failed
    finally:
        handle.remove()


async def test_a_probe_that_runs_out_of_memory_backs_off_and_loses_nothing(tmp_path: Path, models_dir: Path) -> None:
    # CFG 7: each image is two UNet rows (conditional and unconditional), so 2 images fit and 4 do not.
    with unet_memory(most_rows=4) as failed:
        async with running(tmp_path / "data", models_dir) as (daemon, client):
            _, result = await sweep_batches(client, 8, cfg_scale=7.0)
            database = daemon.settings.database_path
            images = await client.call("images.list", experiment_id=result["experiment"]["id"], limit=100)
    assert failed and min(failed) == 8, "the first batch of 4 ran out of memory"
    counts = result["experiment"]["counts"]
    assert counts["done"] == 8 and counts["failed"] == 0
    assert sorted(image["seed"] for image in images["images"]) == list(range(1, 9))
    (row,) = recorded(database)
    assert row[4] in (1, 2), "never above what fit"
