"""Live step previews end to end: a real daemon on the tiny model, real WebSockets, the Python client.

Frames go only to subscriptions that name ``job.preview``; "all events" never carries them; without anyone
wanting them no frame is even made (``PreviewService.frames_made``); a frame comes every ``preview_every_steps``
steps; each is a WebP of the latents' size (an eighth of the image's width and height)."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client
from cauldron_client.events import EventStream
from PIL import Image

from cauldrond.daemon import Daemon
from tests.conftest import FAST, make_settings, token_of, url_of

WIDTH, HEIGHT, STEPS = 64, 128, 5  # latents 8 x 16; steps 2 and 4 are multiples of 2, 5 is not
SEEDS = [11, 12, 13]  # one batch of three (max_batch_size 4)


@pytest.fixture
async def daemon(tmp_path: Path, models_dir: Path) -> AsyncIterator[Daemon]:
    # No per-second cap here, so which frames come depends on steps only, never on the machine's speed.
    settings = make_settings(tmp_path / "data", models_dir, preview_every_steps=2, preview_max_per_s=0)
    running = Daemon(settings)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def _sweep(client: Client) -> int:
    base = {**FAST, "width": WIDTH, "height": HEIGHT, "steps": STEPS}
    created = await client.call("experiments.create", name="previews", base=base, axes={"seed": SEEDS})
    experiment_id: int = created["experiment"]["id"]
    return experiment_id


async def _until_finished(stream: EventStream, experiment_id: int, timeout: float = 120.0) -> list[dict[str, Any]]:
    """Every event the stream gets until the experiment's ``experiment.finished`` (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while (left := deadline - time.monotonic()) > 0:
        event = await stream.next(left)
        if event is None:
            break
        seen.append(event)
        if event["type"] == "experiment.finished" and event["experiment_id"] == experiment_id:
            return seen
    raise AssertionError(f"experiment {experiment_id} did not finish within {timeout} s")


@asynccontextmanager
async def _as_sent_to_all(client: Client) -> AsyncIterator[EventStream]:
    """What the daemon sends to a connection subscribed to all events (``events.subscribe`` without types).

    The client's own all-events stream drops job.preview by itself, which would hide a daemon that sent it; so
    the stream asks for the types to watch, then the subscription is replaced by the daemon's "all"."""
    async with client.events(["job.preview", "job.done", "experiment.finished"]) as stream:
        assert (await client.call("events.subscribe"))["subscribed"] == ["*"]
        yield stream


def _previews(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == "job.preview"]


async def test_only_a_subscription_naming_job_preview_gets_frames_and_none_are_made_unwanted(daemon: Daemon) -> None:
    previews = daemon.services.previews if daemon.services else None
    assert previews is not None
    async with (
        Client(url_of(daemon), token_of(daemon)) as watcher,
        Client(url_of(daemon), token_of(daemon)) as everything,
        _as_sent_to_all(everything) as all_events,
    ):
        # 1. Only an all-events subscriber: nobody wants previews, so none is projected or sent.
        unwanted = await _sweep(everything)
        first_run = await _until_finished(all_events, unwanted)
        assert _previews(first_run) == []
        assert any(event["type"] == "job.done" for event in first_run)  # it did see the run
        assert previews.frames_made == 0

        # 2. A subscriber that names job.preview: frames every 2 steps of the batch, to it alone.
        async with watcher.events(["job.preview", "job.started", "experiment.finished"]) as named:
            wanted = await _sweep(watcher)
            seen = await _until_finished(named, wanted)
            second_run = await _until_finished(all_events, wanted)

    assert _previews(second_run) == []
    frames = _previews(seen)
    batches = {tuple(event["batch"]) for event in seen if event["type"] == "job.started"}
    assert len(batches) == 1, batches  # three seeds of one sweep run as one batch
    (batch,) = batches
    # The batch's first image is shown, at steps 2 and 4 of 5 (every 2 steps; 5 is no multiple of 2).
    assert [(frame["job_id"], frame["step"], frame["total"]) for frame in frames] == [
        (batch[0], 2, STEPS),
        (batch[0], 4, STEPS),
    ]
    assert previews.frames_made == len(frames)
    for frame in frames:
        assert frame["experiment_id"] == wanted
        assert frame["mime"] == "image/webp"
        assert isinstance(frame["image"], bytes)  # msgpack bin, decoded by the client as bytes
        assert (frame["width"], frame["height"]) == (WIDTH // 8, HEIGHT // 8)
        with Image.open(io.BytesIO(frame["image"])) as picture:
            assert picture.format == "WEBP"
            assert picture.size == (WIDTH // 8, HEIGHT // 8)
            picture.load()  # the whole file decodes
        assert isinstance(frame["ts"], float)

    # The latest frame is kept for pollers (the A1111 progress endpoint), overall and per job.
    latest = previews.latest()
    assert latest is not None
    assert (latest.job_id, latest.step, latest.image) == (batch[0], 4, frames[-1]["image"])
    assert previews.latest(batch[0]) == latest
    assert previews.latest(batch[1]) is None  # never shown: not the batch's first image


async def test_an_interest_without_any_subscription_makes_frames_for_pollers(daemon: Daemon) -> None:
    previews = daemon.services.previews if daemon.services else None
    assert previews is not None
    async with Client(url_of(daemon), token_of(daemon)) as client, _as_sent_to_all(client) as all_events:
        previews.want_for(300)  # what a poller such as GET /sdapi/v1/progress does
        experiment_id = await _sweep(client)
        seen = await _until_finished(all_events, experiment_id)
    assert _previews(seen) == []  # the interest makes frames; it does not send them to all-events subscribers
    assert previews.frames_made == 2
    frame = previews.latest()
    assert frame is not None and frame.experiment_id == experiment_id and frame.step == 4
    with Image.open(io.BytesIO(frame.image)) as picture:
        assert picture.size == (frame.width, frame.height) == (WIDTH // 8, HEIGHT // 8)


async def test_one_client_with_an_all_events_stream_and_a_preview_stream_gets_both(daemon: Daemon) -> None:
    """The client asks the daemon for "*" plus job.preview; its all-events stream still gets no frames."""
    async with (
        Client(url_of(daemon), token_of(daemon)) as client,
        client.events() as all_events,
        client.events(["job.preview"]) as frames_only,
    ):
        experiment_id = await _sweep(client)
        seen = await _until_finished(all_events, experiment_id)
        frames = [await frames_only.next(30), await frames_only.next(30)]
        assert await frames_only.next(0) is None  # exactly two: all arrived before experiment.finished
    assert _previews(seen) == []
    assert any(event["type"] == "job.done" for event in seen)
    assert [frame["step"] if frame else None for frame in frames] == [2, 4]


async def test_subscribing_by_name_is_validated(daemon: Daemon) -> None:
    async with Client(url_of(daemon), token_of(daemon)) as client:
        answer = await client.call("events.subscribe", types=["*", "job.preview"])
        assert answer["subscribed"] == ["*", "job.preview"]
        assert daemon.services is not None and daemon.services.events.subscribed_by_name("job.preview") == 1
        await client.call("events.subscribe")  # replaces the filter: the count goes back down
        assert daemon.services.events.subscribed_by_name("job.preview") == 0
