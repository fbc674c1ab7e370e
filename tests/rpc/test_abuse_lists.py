"""Abuse item 1 (issue 9): a list costs O(page), never O(jobs × spec size); a reply too large for one frame is
refused with too_large and a hint, and a big job list is read page by page."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import msgpack
import pytest
from cauldron_client import Client, RpcError

from cauldrond.daemon import Daemon
from cauldrond.rpc.protocol import MAX_REPLY_BYTES
from cauldrond.store import Store
from tests.conftest import FAST
from tests.rpc.abuse import assert_alive

CELLS = 10_000
PROMPT = 1_500  # characters: 10,000 jobs then weigh about 17 MB, more than one reply may carry


def long_prompts(count: int) -> list[str]:
    return [f"{n:04d} " + "a lighthouse at dusk, " * (PROMPT // 22) for n in range(count)]


async def test_a_list_reads_no_spec_and_no_job_rows(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        cells = [{"prompt": f"{n:05d} " + "x" * 94, "seed": n} for n in range(CELLS)]
        await store.experiments.create(name="big", kind="sweep", spec={"cells": cells}, priority=0, cells=cells)
        read: set[tuple[str, str]] = set()

        def authorizer(action: int, table: str | None, column: str | None, *_: Any) -> int:
            if action == sqlite3.SQLITE_READ and table and column:
                read.add((table, column))
            return sqlite3.SQLITE_OK

        # SQLite's authorizer reports every column a statement can read, as it is prepared.
        connection = store.database.connection()
        await connection.set_authorizer(authorizer)
        rows = await store.experiments.page(50, 0)
        await connection.set_authorizer(None)
    finally:
        await store.close()
    assert rows[0].counts == {"queued": CELLS, "running": 0, "done": 0, "failed": 0, "cancelled": 0, "total": CELLS}
    assert ("experiments", "spec") not in read
    # Counting needs the jobs' experiment and status only (the index holds both), never their params.
    assert {column for table, column in read if table == "jobs"} <= {"experiment_id", "status"}


@pytest.fixture
async def big_experiment(client: Client) -> dict[str, Any]:
    await client.call("queue.pause")  # nothing runs: the counts stay put
    prompts = long_prompts(100)
    created = await client.call(
        "experiments.create", name="big", base=FAST, axes={"prompt": prompts, "seed": list(range(CELLS // 100))}
    )
    experiment: dict[str, Any] = created["experiment"]
    assert experiment["counts"]["total"] == CELLS
    return experiment


async def test_listing_a_huge_experiment_is_small_and_cheap(
    daemon: Daemon, client: Client, big_experiment: dict[str, Any]
) -> None:
    calls = [client.call("experiments.list", limit=50) for _ in range(5)]
    alive = asyncio.create_task(assert_alive(daemon))
    listed = await asyncio.gather(*calls)
    await alive
    for result in listed:
        (shown,) = result["experiments"]
        assert shown["id"] == big_experiment["id"] and shown["counts"]["total"] == CELLS
        assert "spec" not in shown
        assert len(msgpack.packb(result)) < 2_000  # one experiment's summary, whatever its spec weighs
    full = await client.call("experiments.get", experiment_id=big_experiment["id"], jobs_limit=0)
    assert len(full["experiment"]["spec"]["resolved_axes"][0]["values"]) == 100  # the spec is one get away


async def test_a_reply_over_the_frame_limit_is_refused_and_paging_works(
    daemon: Daemon, client: Client, big_experiment: dict[str, Any]
) -> None:
    with pytest.raises(RpcError) as caught:
        await client.call("experiments.get", experiment_id=big_experiment["id"], jobs_limit=CELLS)
    assert caught.value.code == "too_large"
    assert str(MAX_REPLY_BYTES) in caught.value.message and "page" in caught.value.message
    seen: list[int] = []
    for offset in range(0, CELLS, 1000):
        page = await client.call(
            "experiments.get", experiment_id=big_experiment["id"], jobs_limit=1000, jobs_offset=offset
        )
        seen += [job["idx"] for job in page["jobs"]]
    assert seen == list(range(CELLS))  # every job once, in cell order: nothing lost
    await assert_alive(daemon)
