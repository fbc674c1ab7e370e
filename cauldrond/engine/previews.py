"""Live step previews of the running batch: made only while someone wants them, rate-limited, published as
``job.preview`` events and kept as the latest frame for consumers that poll (the A1111 ``progress`` endpoint).

Where the work runs: on the GPU worker thread, inside the provider's step callback. A frame is one image's
latents copied to the CPU, a 4x3 projection and a WebP encode of a latent-sized picture. Measured on the dev VM
(2 vCPU shared with other work, no GPU), a whole frame takes ~0.6 ms at 8x8 latents (the tiny model), ~0.9 ms
at 64x64 (a 512x512 image) and ~2.6 ms at 128x128 (SDXL's 1024x1024), against tens of milliseconds (GPU) to
seconds (CPU) for a UNet step, and at most ``max_per_s`` frames a second. Handing it to another thread would
still need the same device-to-CPU copy on this thread (the latents change at the next step) and add a thread
hop per frame, so it stays here. The event loop only stores the finished frame and publishes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cauldrond.engine.replay import BatchShape
from cauldrond.events import EventBus
from cauldrond.media import previews
from cauldrond.providers.base import ProgressCallback
from cauldrond.queue import QueuedJob

log = logging.getLogger(__name__)

PREVIEW_EVENT = "job.preview"
# want_for() is for pollers that ask again; an interest longer than this is cut to it.
MAX_INTEREST_S = 600.0
# Latest frames kept per job for latest(job_id): the jobs of a few batches.
KEPT_JOBS = 64


@dataclass(frozen=True)
class PreviewFrame:
    """One preview: the fields of a ``job.preview`` event (``image`` is the WebP bytes)."""

    job_id: int
    experiment_id: int
    step: int
    total: int
    mime: str
    width: int
    height: int
    image: bytes
    ts: float

    def event_fields(self) -> dict[str, Any]:
        fields = asdict(self)
        del fields["ts"]  # the bus stamps its own
        return fields


class PreviewService:
    """``services.previews``: live step previews (see docs/rpc.md, ``job.preview``).

    Frames are made only while wanted: while at least one event subscription names ``job.preview``, or until an
    interest registered with ``want_for`` runs out. Within a batch, at most one frame every ``every_steps``
    steps (step % every_steps == 0) and at most ``max_per_s`` frames a second (0: no per-second cap).

    For consumers outside the RPC (call them on the event loop):

    - ``want_for(seconds)``: make frames for the next ``seconds`` (at most MAX_INTEREST_S); a poller calls it
      on every poll, so previews stop soon after it stops asking.
    - ``latest(job_id=None) -> PreviewFrame | None``: the last frame made (of that job, when given), with
      ``job_id, experiment_id, step, total, mime ("image/webp"), width, height, image (bytes), ts``; None when
      none was made. Frames stay after their job ends; compare ``job_id`` with the running jobs.
    - ``frames_made``: how many frames were projected and encoded since start (work done, published or not);
      ``frame_seconds``: the worker thread's time spent making them.
    """

    def __init__(
        self,
        events: EventBus,
        *,
        every_steps: int = 1,
        max_per_s: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if every_steps < 1 or max_per_s < 0:
            raise ValueError("every_steps must be at least 1 and max_per_s at least 0")
        self._events = events
        self.clock = clock  # seconds, for the interest and the per-second cap
        self.every_steps = every_steps
        self.min_interval_s = 1.0 / max_per_s if max_per_s else 0.0
        # Written on the loop, read by the worker thread: a float assignment is atomic, no lock needed.
        self._interest_until = 0.0
        self._latest: PreviewFrame | None = None
        self._by_job: OrderedDict[int, PreviewFrame] = OrderedDict()
        self._made_lock = threading.Lock()
        self.frames_made = 0
        self.frame_seconds = 0.0

    def want_for(self, seconds: float) -> None:
        until = self.clock() + min(max(0.0, seconds), MAX_INTEREST_S)
        self._interest_until = max(self._interest_until, until)

    def wanted(self) -> bool:
        """Whether anyone wants frames now; safe from any thread."""
        if self._events.subscribed_by_name(PREVIEW_EVENT):
            return True
        return self.clock() < self._interest_until

    def latest(self, job_id: int | None = None) -> PreviewFrame | None:
        if job_id is None:
            return self._latest
        return self._by_job.get(job_id)

    def for_batch(
        self,
        progress: ProgressCallback,
        jobs: Sequence[QueuedJob],
        loop: asyncio.AbstractEventLoop,
        replay: BatchShape | None = None,
    ) -> BatchPreviews:
        """The progress callback handed to the provider for one batch: ``progress`` plus ``latents``."""
        # An exact re-run's one job sits among placeholders (engine/replay.py).
        positions = dict(enumerate(jobs)) if replay is None else {replay.index: jobs[0]}
        return BatchPreviews(self, progress, positions, loop)

    def _count_made(self, seconds: float) -> None:
        with self._made_lock:
            self.frames_made += 1
            self.frame_seconds += seconds

    def deliver(self, frame: PreviewFrame) -> None:
        """On the loop: keep and publish a frame made elsewhere (a Ray worker's, cauldrond/scaleout/)."""
        self._deliver(frame)

    def _deliver(self, frame: PreviewFrame) -> None:
        """On the loop: keep the frame and publish it."""
        self._latest = frame
        self._by_job[frame.job_id] = frame
        self._by_job.move_to_end(frame.job_id)
        while len(self._by_job) > KEPT_JOBS:
            self._by_job.popitem(last=False)
        self._events.publish("job.preview", **frame.event_fields())


class BatchPreviews:
    """One batch's progress callback with the optional ``latents`` hook providers call after a step
    (``providers.base.StepLatents``). Runs on the worker thread."""

    def __init__(
        self,
        service: PreviewService,
        progress: ProgressCallback,
        positions: dict[int, QueuedJob],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._service = service
        self._progress = progress
        self._positions = positions
        self._loop = loop
        self._last_frame_at = float("-inf")

    def __call__(self, step: int, total: int) -> None:
        self._progress(step, total)

    def latents(self, step: int, total: int, latents: Any, rows: Sequence[int], family: str) -> None:
        """After ``step`` of ``total``: ``latents`` (a tensor of shape (rows, channels, h, w)) holds the images at
        batch positions ``rows``. Makes a frame of the first that is a job when one is due and wanted."""
        if step % self._service.every_steps or not self._service.wanted():
            return
        now = self._service.clock()
        if now - self._last_frame_at < self._service.min_interval_s:
            return
        row = next((index for index, position in enumerate(rows) if position in self._positions), None)
        if row is None:
            return
        self._last_frame_at = now
        job = self._positions[rows[row]]
        try:
            frame = self._make(job, step, total, latents[row], family)
        except Exception:  # a preview must never cost the image
            log.exception("could not make a preview of job %d", job.job_id)
            return
        # RuntimeError: the loop closed while we worked; the daemon is exiting and nobody watches.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._service._deliver, frame)

    def _make(self, job: QueuedJob, step: int, total: int, latent: Any, family: str) -> PreviewFrame:
        started = time.perf_counter()
        values = latent.detach().float().cpu().numpy()
        rgb = previews.project(values, previews.FAMILIES.get(family, previews.SD1))
        data, width, height = previews.encode_webp(rgb)
        self._service._count_made(time.perf_counter() - started)
        return PreviewFrame(
            job_id=job.job_id,
            experiment_id=job.experiment_id,
            step=step,
            total=total,
            mime=previews.MIME,
            width=width,
            height=height,
            image=data,
            ts=time.time(),
        )
