"""The store against real SQLite files: experiments, jobs, images, counts, and the guarantees callers
rely on."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import msgpack
import pytest

from cauldrond.params import GenerationParams
from cauldrond.store import NewImage, Store, StoreError
from cauldrond.store.jobs import InterruptedJob, Verdict


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "cauldron.sqlite3")
    try:
        yield opened
    finally:
        await opened.close()


def cells(count: int, **overrides: Any) -> list[dict[str, Any]]:
    return [
        GenerationParams(prompt=f"cell {i}", seed=i, width=64, height=64, **overrides).to_json_dict()
        for i in range(count)
    ]


def new_image(path: str, seed: int = 1) -> NewImage:
    return NewImage(
        path=path,
        sha256="ab" * 32,
        size_bytes=1234,
        seed=seed,
        params={"prompt": "p", "seed": seed},
        metadata={"model_short_hash": "deadbeef", "device": "cpu"},
        wall_time_s=0.25,
        peak_memory_bytes=None,
    )


async def make(store: Store, count: int, priority: int = 0, name: str = "exp") -> tuple[int, list[int]]:
    return await store.experiments.create(
        name=name,
        kind="grid",
        spec={"axes": {"seed": list(range(count))}},
        priority=priority,
        cells=cells(count),
    )


async def finish(store: Store, job_id: int, path: str) -> int:
    await store.jobs.mark_running([job_id])
    return await store.jobs.complete(job_id, new_image(path))


async def test_create_get_and_list_experiments(store: Store) -> None:
    first, first_jobs = await make(store, 3, name="first")
    second, second_jobs = await make(store, 2, name="second")

    experiment = await store.experiments.get(first)
    assert experiment is not None
    assert (experiment.name, experiment.kind, experiment.priority) == ("first", "grid", 0)
    assert experiment.spec == {"axes": {"seed": [0, 1, 2]}}
    assert experiment.counts == {
        "queued": 3,
        "running": 0,
        "done": 0,
        "failed": 0,
        "cancelled": 0,
        "total": 3,
    }
    assert experiment.status == "queued" and experiment.cancelled_at is None
    assert datetime.fromisoformat(experiment.created_at).utcoffset() is not None

    jobs = await store.jobs.page(first, 10, 0)
    assert [job.id for job in jobs] == first_jobs
    assert [job.idx for job in jobs] == [0, 1, 2]
    assert [job.params for job in jobs] == cells(3)
    assert {job.status for job in jobs} == {"queued"} and {job.attempts for job in jobs} == {0}
    assert [job.id for job in await store.jobs.page(first, 2, 1)] == first_jobs[1:]
    assert len(set(first_jobs) | set(second_jobs)) == 5

    assert [e.id for e in await store.experiments.page(10, 0)] == [second, first]
    assert [e.id for e in await store.experiments.page(1, 1)] == [first]
    assert await store.experiments.get(9999) is None
    assert await store.jobs.get(9999) is None
    with pytest.raises(StoreError):
        await store.experiments.create(name="empty", kind="grid", spec={}, priority=0, cells=[])


async def test_ten_thousand_cells_commit_in_one_transaction(store: Store) -> None:
    # Speed here comes from one fsynced COMMIT and one prepared INSERT for every cell (bench/enqueue.py times it);
    # what a test can hold without a clock is the shape: statements do not grow with the cell count.
    many = cells(10_000, steps=4)
    statements: list[str] = []
    await store.database.connection().set_trace_callback(statements.append)
    experiment_id, job_ids = await store.experiments.create(name="big", kind="grid", spec={}, priority=0, cells=many)
    await store.database.connection().set_trace_callback(None)

    assert [s for s in statements if s.startswith(("BEGIN", "COMMIT"))] == ["BEGIN IMMEDIATE", "COMMIT"]
    # executemany runs one prepared statement per row: 10,000 job INSERTs, one experiment INSERT, one SELECT.
    assert sum(s.startswith("INSERT INTO jobs") for s in statements) == 10_000
    # The prompt history keeps an experiment's first 100 distinct prompts (each cell here has its own).
    assert sum(s.startswith("INSERT INTO prompt_history") for s in statements) == 100
    assert len(statements) <= 10_000 + 4 + 100
    assert len(job_ids) == len(set(job_ids)) == 10_000
    experiment = await store.experiments.get(experiment_id)
    assert experiment is not None and experiment.counts["queued"] == experiment.counts["total"] == 10_000
    last = await store.jobs.get(job_ids[-1])
    assert last is not None and last.idx == 9_999 and last.params == many[-1]


async def test_counts_and_derived_status(store: Store) -> None:
    experiment_id, (a, b, c, d) = await make(store, 4)

    async def status() -> tuple[str, dict[str, int]]:
        row = await store.experiments.get(experiment_id)
        assert row is not None
        return row.status, row.counts

    await store.jobs.mark_running([a, b])
    assert (await status())[0] == "running"
    await store.jobs.complete(a, new_image("a.png"))
    await store.jobs.mark_failed(b, "out of memory")
    state, counts = await status()
    assert state == "queued" and (counts["done"], counts["failed"], counts["queued"]) == (1, 1, 2)
    await store.jobs.mark_running([c, d])
    await store.jobs.complete(c, new_image("c.png"))
    await store.jobs.mark_failed(d, "out of memory")
    state, counts = await status()
    assert state == "done"
    assert counts == {"queued": 0, "running": 0, "done": 2, "failed": 2, "cancelled": 0, "total": 4}

    all_failed, (e,) = await make(store, 1)
    await store.jobs.mark_failed(e, "bad model")
    row = await store.experiments.get(all_failed)
    assert row is not None and row.status == "failed"
    job = await store.jobs.get(e)
    assert job is not None and job.last_error == "bad model" and job.finished_at is not None

    assert await store.jobs.count_by_status() == {
        "queued": 0,
        "running": 0,
        "done": 2,
        "failed": 3,
        "cancelled": 0,
    }


async def test_cancel_experiment(store: Store) -> None:
    experiment_id, (running, queued_1, queued_2) = await make(store, 3)
    other, other_jobs = await make(store, 1)
    await store.jobs.mark_running([running])

    assert await store.experiments.cancel(experiment_id) == ([queued_1, queued_2], [running])
    row = await store.experiments.get(experiment_id)
    assert row is not None and row.cancelled_at is not None
    # The running job is still the engine's: the experiment is not "cancelled" until it stops.
    assert row.status == "running" and row.counts["cancelled"] == 2
    assert [job.job_id for job in await store.jobs.queued()] == other_jobs

    assert await store.jobs.mark_cancelled([running]) == [running]
    row = await store.experiments.get(experiment_id)
    assert row is not None and row.status == "cancelled"

    cancelled_at = row.cancelled_at
    assert await store.experiments.cancel(experiment_id) == ([], [])
    again = await store.experiments.get(experiment_id)
    assert again is not None and again.cancelled_at == cancelled_at
    assert await store.experiments.cancel(9999) is None
    untouched = await store.experiments.get(other)
    assert untouched is not None and untouched.status == "queued" and untouched.cancelled_at is None


async def test_priority_orders_the_queued_jobs(store: Store) -> None:
    low, (low_0, low_1) = await make(store, 2)
    same, (same_0,) = await make(store, 1)
    high, (high_0,) = await make(store, 1, priority=5)

    order = [(job.job_id, job.priority) for job in await store.jobs.queued()]
    assert order == [(high_0, 5), (low_0, 0), (low_1, 0), (same_0, 0)]

    before = await store.experiments.get(same)
    assert await store.experiments.set_priority(same, 10) is True
    after = await store.experiments.get(same)
    assert before is not None and after is not None
    assert after.priority == 10 and after.updated_at >= before.updated_at
    assert [job.job_id for job in await store.jobs.queued()] == [same_0, high_0, low_0, low_1]
    assert await store.experiments.set_priority(9999, 1) is False

    queued = (await store.jobs.queued())[0]
    assert queued.experiment_id == same and queued.idx == 0 and queued.params == cells(1)[0]
    assert low != high


async def test_job_transitions_only_move_jobs_that_can_move(store: Store) -> None:
    _experiment, (a, b, c) = await make(store, 3)

    assert await store.jobs.mark_running([a, b]) == [a, b]
    assert await store.jobs.mark_running([a, b, c]) == [c]  # a and b were already running
    assert await store.jobs.requeue([a], count_attempt=False) == [a]
    assert await store.jobs.requeue([b], count_attempt=True) == [b]
    job_a, job_b = await store.jobs.get(a), await store.jobs.get(b)
    assert job_a is not None and job_b is not None
    assert (job_a.status, job_a.attempts, job_a.started_at) == ("queued", 0, None)
    assert (job_b.status, job_b.attempts) == ("queued", 1)
    assert await store.jobs.requeue([a], count_attempt=True) == []  # not running: nothing to put back

    await store.jobs.complete(c, new_image("c.png"))
    await store.jobs.mark_failed(b, "broken")
    assert await store.jobs.mark_cancelled([a, b, c]) == [a]
    assert await store.jobs.mark_failed(c, "late failure") is False
    statuses = {job.id: job.status for job in await store.jobs.page(_experiment, 10, 0)}
    assert statuses == {a: "cancelled", b: "failed", c: "done"}


async def test_a_cancelled_experiment_is_never_revived_by_a_requeue(store: Store) -> None:
    experiment_id, (job,) = await make(store, 1)
    await store.jobs.mark_running([job])
    await store.experiments.cancel(experiment_id)

    assert await store.jobs.requeue([job], count_attempt=False) == []
    row = await store.jobs.get(job)
    assert row is not None and row.status == "cancelled"
    assert await store.jobs.queued() == []


async def test_reap_interrupted_applies_the_crash_guards_verdicts_in_one_go(store: Store) -> None:
    _experiment, (struck, blamed, innocent, waiting) = await make(store, 4)
    assert await store.jobs.reap_interrupted(lambda job: Verdict(strikes=99)) == []

    await store.jobs.mark_running([struck, blamed, innocent])
    assert await store.jobs.mark_at_work_alone(struck)
    seen: list[InterruptedJob] = []

    def judge(job: InterruptedJob) -> Verdict:
        seen.append(job)
        if job.id == struck:
            return Verdict(strikes=1, backoff_batches=2, not_before=1234.5, error="one strike")
        if job.id == blamed:
            return Verdict(strikes=3, quarantine=True, error="crashed the daemon 3 times while running alone")
        return Verdict(strikes=0)

    reaped = await store.jobs.reap_interrupted(judge)
    assert [item.job for item in reaped] == seen
    assert seen == [
        InterruptedJob(struck, _experiment, suspect=False, strikes=0, at_work_alone=True),
        InterruptedJob(blamed, _experiment, suspect=False, strikes=0, at_work_alone=False),
        InterruptedJob(innocent, _experiment, suspect=False, strikes=0, at_work_alone=False),
    ]
    rows = {job.id: job for job in await store.jobs.page(_experiment, 10, 0)}
    assert (rows[struck].status, rows[struck].suspect, rows[struck].strikes) == ("queued", True, 1)
    assert (rows[struck].attempts, rows[struck].last_error) == (1, "one strike")
    assert (rows[blamed].status, rows[blamed].strikes) == ("failed", 3)
    assert rows[blamed].last_error == "crashed the daemon 3 times while running alone"
    assert rows[blamed].finished_at is not None
    assert (rows[innocent].status, rows[innocent].suspect, rows[innocent].last_error) == ("queued", True, None)
    assert (rows[waiting].status, rows[waiting].suspect, rows[waiting].attempts) == ("queued", False, 0)
    queued = {row.job_id: row for row in await store.jobs.queued()}
    assert set(queued) == {struck, innocent, waiting}
    assert (queued[struck].backoff_batches, queued[struck].not_before) == (2, 1234.5)

    # The next batch to start (not the struck job's) counts its wait down; its own start ends it.
    await finish(store, innocent, "exp-000001/00002-2.png")
    assert (await store.jobs.queued())[0].backoff_batches == 1
    await store.jobs.mark_running([struck])
    assert await store.jobs.queued() == [queued[waiting]]
    # A clean shutdown's requeue drops the evidence, so a later reap finds the job without it.
    assert await store.jobs.mark_at_work_alone(struck)
    await store.jobs.requeue([struck], count_attempt=False)
    await store.jobs.mark_running([struck])
    ((item,),) = [await store.jobs.reap_interrupted(lambda job: Verdict(strikes=job.strikes))]
    assert item.job == InterruptedJob(struck, _experiment, suspect=True, strikes=1, at_work_alone=False)


async def test_complete_job_records_the_image_with_the_job(store: Store) -> None:
    experiment_id, (job_id, _other) = await make(store, 2)
    image_id = await finish(store, job_id, "exp-000001/00000-0.png")

    image = await store.images.get(image_id)
    assert image is not None
    assert (image.job_id, image.experiment_id, image.path) == (
        job_id,
        experiment_id,
        "exp-000001/00000-0.png",
    )
    assert image.metadata == {"model_short_hash": "deadbeef", "device": "cpu"}
    assert (image.seed, image.size_bytes, image.wall_time_s, image.peak_memory_bytes) == (1, 1234, 0.25, None)
    job = await store.jobs.get(job_id)
    assert job is not None and (job.status, job.image_id) == ("done", image_id) and job.finished_at
    assert [j.image_id for j in await store.jobs.page(experiment_id, 10, 0)] == [image_id, None]
    assert await store.images.get(9999) is None


async def test_complete_job_is_atomic(store: Store) -> None:
    experiment_id, (first, second) = await make(store, 2)
    await finish(store, first, "same.png")
    await store.jobs.mark_running([second])

    seen: list[tuple[str, int | None]] = []

    async def watch() -> None:
        for _ in range(20):
            job = await store.jobs.get(second)
            assert job is not None
            seen.append((job.status, job.image_id))
            await asyncio.sleep(0)

    # The duplicate path fails inside the transaction, after the job row was already updated in it.
    results = await asyncio.gather(store.jobs.complete(second, new_image("same.png")), watch(), return_exceptions=True)
    assert isinstance(results[0], sqlite3.IntegrityError)
    assert results[1] is None
    # No reader ever saw the uncommitted "done".
    assert set(seen) == {("running", None)}

    job = await store.jobs.get(second)
    assert job is not None and (job.status, job.image_id, job.finished_at) == ("running", None, None)
    assert [image.job_id for image in await store.images.page(experiment_id=None, limit=10, after_id=None)] == [first]
    row = await store.experiments.get(experiment_id)
    assert row is not None and (row.counts["done"], row.counts["running"]) == (1, 1)


@pytest.mark.parametrize("path", ["../escape.png", "/abs/olute.png", "a/../../b.png", "a\\b.png", ""])
async def test_complete_job_refuses_paths_outside_the_images_folder(store: Store, path: str) -> None:
    _experiment, (job_id,) = await make(store, 1)
    await store.jobs.mark_running([job_id])
    with pytest.raises(StoreError):
        await store.jobs.complete(job_id, new_image(path))
    job = await store.jobs.get(job_id)
    assert job is not None and job.status == "running"


async def test_complete_job_refuses_a_job_that_is_done_or_missing(store: Store) -> None:
    _experiment, (job_id,) = await make(store, 1)
    await finish(store, job_id, "one.png")
    with pytest.raises(StoreError, match="already done"):
        await store.jobs.complete(job_id, new_image("two.png"))
    with pytest.raises(StoreError):
        await store.jobs.complete(9999, new_image("three.png"))
    assert len(await store.images.files()) == 1


async def test_list_images_pages_by_id(store: Store) -> None:
    first, first_jobs = await make(store, 3)
    second, second_jobs = await make(store, 2)
    ids = []
    for n, job_id in enumerate([first_jobs[0], second_jobs[0], first_jobs[1], second_jobs[1], first_jobs[2]]):
        ids.append(await finish(store, job_id, f"{n}.png"))

    pages, after = [], None
    while page := await store.images.page(experiment_id=None, limit=2, after_id=after):
        pages.append([image.id for image in page])
        after = page[-1].id
    assert pages == [ids[0:2], ids[2:4], ids[4:5]]

    of_first = await store.images.page(experiment_id=first, limit=2, after_id=None)
    assert [image.id for image in of_first] == [ids[0], ids[2]]
    rest = await store.images.page(experiment_id=first, limit=2, after_id=of_first[-1].id)
    assert [image.id for image in rest] == [ids[4]]
    assert [i.id for i in await store.images.page(experiment_id=second, limit=10, after_id=None)] == [
        ids[1],
        ids[3],
    ]

    files = await store.images.files()
    assert (files[0].image_id, files[0].job_id, files[0].path, files[0].sha256, files[0].size_bytes) == (
        ids[0],
        first_jobs[0],
        "0.png",
        "ab" * 32,
        1234,
    )


async def test_list_images_stays_an_index_seek_with_100k_rows(tmp_path: Path) -> None:
    path = tmp_path / "big.sqlite3"
    store = await Store.open(path)
    experiment_id, _ = await make(store, 1)
    other_id, _ = await make(store, 1)
    await store.close()
    total = 100_000
    # Bulk rows go in through plain sqlite3: this test is about reading them back, and it should stay fast.
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("DELETE FROM jobs WHERE experiment_id = ?", (experiment_id,))
        numbers = f"WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < {total - 1}) "
        db.execute(
            "INSERT INTO jobs (id, experiment_id, idx, params, status, created_at) "
            + numbers
            + "SELECT 1000 + x, ?, x, '{}', 'done', 'now' FROM n",
            (experiment_id,),
        )
        db.execute(
            "INSERT INTO images (job_id, experiment_id, path, sha256, size_bytes, seed, params, metadata, "
            "wall_time_s, created_at) "
            + numbers
            + "SELECT 1000 + x, ?, x || '.png', 'x', 1, 1, '{}', '{}', 0.1, 'now' FROM n",
            (experiment_id,),
        )

    store = await Store.open(path)
    try:
        statements: list[str] = []
        await store.database.connection().set_trace_callback(statements.append)
        started = time.perf_counter()
        last_page = await store.images.page(experiment_id=None, limit=50, after_id=total - 50)
        of_experiment = await store.images.page(experiment_id=experiment_id, limit=50, after_id=total - 20)
        none_left = await store.images.page(experiment_id=other_id, limit=50, after_id=None)
        elapsed = time.perf_counter() - started
        await store.database.connection().set_trace_callback(None)
        print(f"\nthree deep list_images pages over 100,000 rows: {elapsed * 1000:.1f} ms")

        assert [image.id for image in last_page] == list(range(total - 49, total + 1))
        assert len(of_experiment) == 20 and none_left == []
        listing = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT * FROM IMAGES")]
        assert len(listing) == 3
        with sqlite3.connect(path) as db:
            for sql in listing:
                plan = " | ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql))
                # A range seek on the key (or the experiment index), never a scan and never a sort.
                assert "SEARCH images USING" in plan, plan
                assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
        experiment = await store.experiments.get(experiment_id)
        assert experiment is not None and experiment.counts["done"] == total
    finally:
        await store.close()


async def test_every_change_is_committed_before_the_call_returns(store: Store) -> None:
    # A second, independent connection sees only committed data.
    with sqlite3.connect(store.path) as other:

        def status_of(job_id: int) -> str:
            return str(other.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()[0])

        experiment_id, (a, b) = await make(store, 2)
        assert other.execute("SELECT COUNT(*) FROM jobs WHERE experiment_id = ?", (experiment_id,)).fetchone() == (2,)
        await store.jobs.mark_running([a, b])
        assert status_of(a) == "running"
        image_id = await store.jobs.complete(a, new_image("a.png"))
        assert status_of(a) == "done"
        assert other.execute("SELECT job_id FROM images WHERE id = ?", (image_id,)).fetchone() == (a,)
        await store.jobs.requeue([b], count_attempt=True)
        assert status_of(b) == "queued"
        await store.experiments.cancel(experiment_id)
        assert status_of(b) == "cancelled"


async def test_concurrent_calls_do_not_trip_over_each_other(store: Store) -> None:
    created = await asyncio.gather(*(make(store, 20, name=f"e{n}") for n in range(10)))
    all_jobs = [job for _experiment, jobs in created for job in jobs]

    async def work(n: int, job_id: int) -> None:
        await store.jobs.mark_running([job_id])
        await store.experiments.get(created[n % 10][0])
        if n % 3:
            await store.jobs.complete(job_id, new_image(f"{job_id}.png"))
        else:
            await store.jobs.requeue([job_id], count_attempt=True)

    await asyncio.gather(*(work(n, job_id) for n, job_id in enumerate(all_jobs)))
    counts = await store.jobs.count_by_status()
    requeued = len([n for n in range(len(all_jobs)) if n % 3 == 0])
    assert counts == {"queued": requeued, "running": 0, "done": 200 - requeued, "failed": 0, "cancelled": 0}
    assert len(await store.jobs.queued()) == requeued


async def test_drop_image_and_requeue(store: Store) -> None:
    experiment_id, (kept, lost) = await make(store, 2)
    await finish(store, kept, "kept.png")
    image_id = await finish(store, lost, "lost.png")
    await store.annotations.save(image_id, "tagger", {"tags": "sky, sea"})

    assert await store.images.drop_and_requeue(image_id, reason="image file missing at start") == lost
    assert await store.images.get(image_id) is None
    assert await store.annotations.get(image_id) == []
    job = await store.jobs.get(lost)
    assert job is not None
    assert (job.status, job.image_id, job.finished_at) == ("queued", None, None)
    assert job.last_error == "image file missing at start"
    assert [q.job_id for q in await store.jobs.queued()] == [lost]
    assert await store.images.drop_and_requeue(image_id) is None
    assert [image.job_id for image in await store.images.files()] == [kept]

    # A lost image of a cancelled experiment is not generated again. (Cancelling marks an experiment only while it
    # has work left, so one of its cells is still queued here.)
    cancelled, (done_job, still_queued) = await make(store, 2)
    cancelled_image = await finish(store, done_job, "cancelled.png")
    assert await store.experiments.cancel(cancelled) == ([still_queued], [])
    assert await store.images.drop_and_requeue(cancelled_image) == done_job
    job = await store.jobs.get(done_job)
    assert job is not None and job.status == "cancelled"
    assert experiment_id != cancelled


async def test_annotations_and_tokens(store: Store) -> None:
    _experiment, (job_id,) = await make(store, 1)
    image_id = await finish(store, job_id, "x.png")
    await store.annotations.save(image_id, "tagger", {"tags": "sky", "nsfw": "false"})
    await store.annotations.save(image_id, "tagger", {"tags": "sky, sea"})
    annotations = await store.annotations.get(image_id)
    assert [(a.plugin, a.key, a.value) for a in annotations] == [
        ("tagger", "nsfw", "false"),
        ("tagger", "tags", "sky, sea"),
    ]

    token = await store.tokens.add("phone", "hash-1")
    assert (token.name, token.token_hash, token.revoked_at) == ("phone", "hash-1", None)
    assert "token_hash" not in token.to_dict()
    with pytest.raises(sqlite3.IntegrityError):
        await store.tokens.add("again", "hash-1")
    await store.tokens.touch(token.id)
    found = await store.tokens.find_active("hash-1")
    assert found is not None and found.id == token.id and found.last_used_at is not None
    assert await store.tokens.revoke(token.id) is True
    assert await store.tokens.revoke(token.id) is False
    assert await store.tokens.find_active("hash-1") is None
    assert [t.revoked_at is not None for t in await store.tokens.all()] == [True]


async def test_rows_are_msgpack_safe(store: Store) -> None:
    experiment_id, (job_id,) = await make(store, 1)
    image_id = await finish(store, job_id, "x.png")
    await store.annotations.save(image_id, "tagger", {"tags": "sky"})
    token = await store.tokens.add("cli", "h")
    experiment = await store.experiments.get(experiment_id)
    job = await store.jobs.get(job_id)
    image = await store.images.get(image_id)
    assert experiment is not None and job is not None and image is not None

    rows: list[Any] = [
        experiment,
        job,
        image,
        token,
        *await store.annotations.get(image_id),
        new_image("y.png"),
    ]
    for row in rows:
        data = row.to_dict()
        assert msgpack.unpackb(msgpack.packb(data)) == data
    shape = experiment.to_dict()
    assert shape["status"] == "done" and shape["counts"]["done"] == 1 and shape["spec"] == {"axes": {"seed": [0]}}
    queued_experiment, _ = await make(store, 1)
    queued = (await store.jobs.queued())[0]
    assert queued.experiment_id == queued_experiment
    assert msgpack.unpackb(msgpack.packb(queued.to_dict())) == queued.to_dict()


async def test_a_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "c.sqlite3")
    assert store.is_open
    await store.close()
    await store.close()
    assert not store.is_open
    with pytest.raises(StoreError, match="closed"):
        await store.experiments.get(1)


async def test_a_cancelled_call_never_leaves_half_a_transaction(store: Store) -> None:
    # Cancel a create at every point of its life: before, during and after its statements run.
    for ticks in range(12):
        task = asyncio.create_task(make(store, 50, name=f"t{ticks}"))
        for _ in range(ticks):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    # The connection is usable, and every experiment that exists has all of its jobs.
    experiment_id, _ = await make(store, 3, name="after")
    for row in await store.experiments.page(100, 0):
        assert row.counts["total"] == (3 if row.id == experiment_id else 50)
