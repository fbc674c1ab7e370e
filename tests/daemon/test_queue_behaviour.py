"""Priority, fairness, cancel, pause/resume and responsiveness, observed through RPC and events."""

from __future__ import annotations

from typing import Any

from cauldron_client import Client

from tests.conftest import FAST
from tests.waiting import finished, until

LONG = {**FAST, "steps": 400}  # a few seconds on the tiny model: long enough to act on while it runs


async def started_order(client: Client, count: int) -> list[int]:
    """Experiment ids in the order their jobs start, one entry per job."""
    order: list[int] = []
    async with client.events(["job.started"]) as stream:
        await client.call("queue.resume")
        while len(order) < count:
            event = await stream.next(60)
            assert event is not None, "no job started within 60 s"
            order.append(event["experiment_id"])
    return order


async def create(client: Client, name: str, cells: int, priority: int = 0, **base: Any) -> int:
    result = await client.call(
        "experiments.create",
        name=name,
        base={**FAST, **base},
        # Distinct step counts keep cells from batching, so each start event is one cell.
        axes={"steps": list(range(1, cells + 1))},
        priority=priority,
    )
    experiment_id: int = result["experiment"]["id"]
    return experiment_id


async def test_priority_then_round_robin(client: Client) -> None:
    await client.call("queue.pause")
    big = await create(client, "big", 6)
    small = await create(client, "small", 2)
    urgent = await create(client, "urgent", 2, priority=5)
    queued = await client.call("queue.list")
    assert queued["paused"] is True and queued["total"] == 10
    predicted = [job["experiment_id"] for job in queued["jobs"]]
    order = await started_order(client, 10)
    assert order == predicted
    assert order[:2] == [urgent, urgent]
    # Round-robin: the small experiment is finished within the first turns, not after the big one.
    assert order[2:6] == [big, small, big, small]


async def test_set_priority_moves_an_experiment_ahead(client: Client) -> None:
    await client.call("queue.pause")
    first = await create(client, "first", 3)
    second = await create(client, "second", 3)
    moved = await client.call("experiments.set_priority", experiment_id=second, priority=10)
    assert moved["experiment"]["priority"] == 10
    order = await started_order(client, 6)
    assert order == [second] * 3 + [first] * 3


async def test_pause_holds_work_and_resume_releases_it(client: Client) -> None:
    await client.call("queue.pause")
    async with client.events(["job.started", "queue.resumed"]) as stream:
        await stream.start()  # subscribed before the work exists: a start while paused cannot be missed
        experiment_id = await create(client, "held", 2)
        held = await client.call("experiments.get", experiment_id=experiment_id)
        assert held["experiment"]["counts"]["queued"] == 2
        await client.call("queue.resume")
        # Events arrive in the order the daemon published them: no job may start before the resume.
        first = await stream.next(60)
        assert first is not None and first["type"] == "queue.resumed", first
        started = await stream.next(60)
        assert started is not None and started["type"] == "job.started" and started["experiment_id"] == experiment_id
    done = await finished(client, experiment_id)
    assert done["experiment"]["counts"]["done"] == 2


async def test_cancel_stops_the_running_job_at_its_next_step(client: Client) -> None:
    created = await client.call("experiments.create", name="long", base=LONG, axes={"seed": [1, 2, 3]})
    experiment_id = created["experiment"]["id"]
    async with client.events(["job.progress", "job.cancelled"]) as stream:
        first = await stream.next(60)
        assert first is not None and first["type"] == "job.progress"
        outcome = await client.call("experiments.cancel", experiment_id=experiment_id)
        assert outcome["stopping"] >= 1
        last_step = first["step"]
        while True:
            event = await stream.next(30)
            assert event is not None
            if event["type"] == "job.progress":
                last_step = event["step"]
            if event["type"] == "job.cancelled" and event["job_id"] == first["job_id"]:
                break
    assert last_step < LONG["steps"]
    result = await finished(client, experiment_id)
    statuses = {job["status"] for job in result["jobs"]}
    assert statuses == {"cancelled"}
    assert result["experiment"]["status"] == "cancelled"
    assert (await client.call("images.list", experiment_id=experiment_id))["images"] == []


async def test_rpc_answers_while_the_engine_generates(client: Client) -> None:
    created = await client.call("generate", **LONG, seed=5)
    job_id = created["job_ids"][0]
    experiment_id = created["experiment"]["id"]

    async def running() -> bool:
        return bool((await client.call("queue.list"))["running"])

    await until(running, timeout=60, interval=0.01)
    answered = 0
    for _ in range(20):
        info = await client.call("system.info")
        answered += 1
        assert info["queue"]["running"] == 1
    job = (await client.call("experiments.get", experiment_id=experiment_id))["jobs"][0]
    assert job["id"] == job_id and job["status"] == "running", "the calls were answered while generating"
    assert answered == 20
    await client.call("experiments.cancel", experiment_id=experiment_id)
