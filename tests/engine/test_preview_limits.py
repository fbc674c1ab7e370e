"""PreviewService's gates, driven by a clock the test sets (so no wall-clock timing): every N steps, at most M
frames a second per batch, only while a subscription names job.preview or an interest lasts."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import torch
from PIL import Image

from cauldrond.engine.previews import PreviewService
from cauldrond.engine.replay import BatchShape
from cauldrond.events import EventBus
from cauldrond.queue import QueuedJob
from tests.waiting import until


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _jobs(count: int) -> list[QueuedJob]:
    return [QueuedJob(job_id=100 + index, experiment_id=7, idx=index, params={}) for index in range(count)]


def _ignore(step: int, total: int) -> None:
    pass


async def _frames(bus_subscription: Any, count: int) -> list[dict[str, Any]]:
    async with asyncio.timeout(10):
        return [await bus_subscription.get() for _ in range(count)]


async def test_at_most_max_per_s_frames_a_second_within_a_batch() -> None:
    events, clock = EventBus(), Clock()
    watching = events.subscribe(["job.preview"])
    service = PreviewService(events, every_steps=1, max_per_s=4, clock=clock)  # one frame per 0.25 s
    batch = service.for_batch(_ignore, _jobs(2), asyncio.get_running_loop())
    latents = torch.zeros(2, 4, 2, 2)
    made_at = []
    for step, at in enumerate([0.0, 0.1, 0.2, 0.25, 0.3, 0.49, 0.5, 2.0], start=1):
        clock.now = 1000.0 + at
        before = service.frames_made
        batch.latents(step, 8, latents, [0, 1], "sd1")
        if service.frames_made > before:
            made_at.append(at)
    assert made_at == [0.0, 0.25, 0.5, 2.0]
    frames = await _frames(watching, 4)
    assert [(frame["job_id"], frame["step"]) for frame in frames] == [(100, 1), (100, 4), (100, 7), (100, 8)]
    # A new batch starts its own count: its first frame is not held back by the last batch's.
    other = service.for_batch(_ignore, _jobs(1), asyncio.get_running_loop())
    other.latents(1, 8, latents[:1], [0], "sd1")
    assert service.frames_made == 5


async def test_every_n_steps_and_no_cap() -> None:
    events, clock = EventBus(), Clock()
    events.subscribe(["job.preview"])
    service = PreviewService(events, every_steps=3, max_per_s=0, clock=clock)
    batch = service.for_batch(_ignore, _jobs(1), asyncio.get_running_loop())
    for step in range(1, 11):  # all at the same instant: the missing cap lets every due step through
        batch.latents(step, 10, torch.zeros(1, 4, 2, 2), [0], "sd1")
    assert service.frames_made == 3  # steps 3, 6, 9


async def test_nothing_is_made_unless_named_or_wanted() -> None:
    events, clock = EventBus(), Clock()
    everything = events.subscribe(None)
    published: list[dict[str, Any]] = []
    events.tap(published.append)  # sees every event as it is published, without wanting previews
    service = PreviewService(events, max_per_s=0, clock=clock)
    batch = service.for_batch(_ignore, _jobs(1), asyncio.get_running_loop())
    latents = torch.zeros(1, 4, 2, 2)
    batch.latents(1, 4, latents, [0], "sd1")
    assert service.frames_made == 0 and service.latest() is None

    service.want_for(5.0)  # a poller's interest: five seconds from now
    clock.now += 4.9
    batch.latents(2, 4, latents, [0], "sd1")
    assert service.frames_made == 1
    clock.now += 0.2  # 5.1 s after the interest began: it ran out
    batch.latents(3, 4, latents, [0], "sd1")
    assert service.frames_made == 1

    named = events.subscribe(["job.preview"])
    batch.latents(4, 4, latents, [0], "sd1")
    assert service.frames_made == 2
    events.unsubscribe(named)
    events.unsubscribe(named)  # twice: the count must not go below what is subscribed
    batch.latents(4, 4, latents, [0], "sd1")
    assert service.frames_made == 2

    async def both_published() -> bool:
        return sum(event["type"] == "job.preview" for event in published) == 2

    await until(both_published, timeout=10)
    assert everything.dropped == 0 and everything._queue.empty()  # "all events" never received a frame


async def test_an_exact_rerun_shows_its_own_image_not_a_placeholder() -> None:
    events = EventBus()
    watching = events.subscribe(["job.preview"])
    service = PreviewService(events, max_per_s=0)
    (job,) = _jobs(1)
    batch = service.for_batch(_ignore, [job], asyncio.get_running_loop(), BatchShape(size=3, index=2, guided=True))
    latents = torch.zeros(3, 4, 1, 1)
    latents[2, 0] = 1.0  # only the re-run image has a non-zero latent
    batch.latents(1, 2, latents[:2], [0, 1], "sd1")  # a chunk of placeholders only: nothing to show
    assert service.frames_made == 0
    batch.latents(1, 2, latents, [0, 1, 2], "sd1")
    (frame,) = await _frames(watching, 1)
    assert frame["job_id"] == job.job_id
    with Image.open(io.BytesIO(frame["image"])) as picture:
        shown = picture.convert("RGB").getpixel((0, 0))
    # Row 2's latent (1, 0, 0, 0) is SD 1.x's first factor row, (172, 157, 169); a placeholder's zeros are grey 128.
    assert all(abs(got - want) <= 8 for got, want in zip(shown, (172, 157, 169), strict=True)), shown
    latest = service.latest(job.job_id)
    assert latest is not None and latest.image == frame["image"]
