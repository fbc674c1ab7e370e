"""The engine task: take a batch from the queue, mark it running, generate it on the worker thread, write the
images atomically, commit each image with its job's ``done``, then announce it.

Order matters for durability: a state change is committed before it is announced, and an image file is on disk
(fsynced, renamed) before the row that points at it is committed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cauldrond.engine.worker import GpuWorker
from cauldrond.events import EventBus
from cauldrond.media.png import png_text_chunks, write_png_atomic
from cauldrond.params import MAX_SEED, RANDOM_SEED, GenerationParams
from cauldrond.providers.base import GenerationInterrupted, ProviderError
from cauldrond.providers.registry import ProviderRegistry
from cauldrond.queue import JobQueue, QueuedJob
from cauldrond.queue.batching import batch_key
from cauldrond.store import NewImage, Store

log = logging.getLogger(__name__)


@dataclass
class _Written:
    job: QueuedJob
    image: NewImage


class Engine:
    def __init__(
        self,
        *,
        store: Store,
        queue: JobQueue,
        events: EventBus,
        providers: ProviderRegistry,
        images_dir: Path,
        max_batch_size: int,
        on_image: Callable[[int], None] | None = None,
    ) -> None:
        self._store = store
        # Told each committed image id (post-processing); it must only queue work, never wait for it.
        self._on_image = on_image
        self._queue = queue
        self._events = events
        self._providers = providers
        self._images_dir = images_dir
        self._max_batch_size = max_batch_size
        self._worker = GpuWorker()
        self._task: asyncio.Task[None] | None = None
        self._stopping = threading.Event()  # read by the worker thread between denoising steps
        self._cancel_lock = threading.Lock()
        self._cancelled_experiments: set[int] = set()
        self._running: list[QueuedJob] = []
        self.ready = False
        self.batches_run = 0
        self.last_model: str | None = None  # the model the provider most likely still holds

    # -- lifecycle ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._worker.run(self._optimize_providers)
        self._task = asyncio.create_task(self._run(), name="cauldron-engine")
        self.ready = True

    def _optimize_providers(self) -> None:
        for provider in self._providers.all():
            provider.optimize_for_hardware()

    async def stop(self, timeout: float = 6.0) -> None:
        """Stop at the next denoising step and put the running jobs back as queued."""
        self.ready = False
        self._stopping.set()
        self._queue.wake()
        if self._task is not None:
            if not self._running:
                self._task.cancel()  # idle, waiting for work: nothing to wind down
            done, _ = await asyncio.wait({self._task}, timeout=timeout)
            if not done:
                # Stuck in something that cannot be interrupted (a model load). Leave the thread behind: it is a
                # daemon thread, and its jobs are requeued below.
                log.warning("the running batch did not stop within %.0f s; requeueing it anyway", timeout)
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        if self._running:
            await self._requeue(self._running, reason="shutdown")
            self._running = []
        self._worker.shutdown()

    @property
    def abandoned_work(self) -> bool:
        """After stop: the worker thread is still inside a call that could not be interrupted (a model load)."""
        return self._worker.busy

    # -- control from RPC ---------------------------------------------------------------------------------------

    @property
    def running_jobs(self) -> list[QueuedJob]:
        return list(self._running)

    def cancel_experiment(self, experiment_id: int) -> int:
        """Ask the running batch to stop at its next step if it holds jobs of this experiment."""
        with self._cancel_lock:
            self._cancelled_experiments.add(experiment_id)
        return sum(1 for job in self._running if job.experiment_id == experiment_id)

    def _should_stop(self, batch: Sequence[QueuedJob]) -> bool:
        if self._stopping.is_set():
            return True
        with self._cancel_lock:
            return any(job.experiment_id in self._cancelled_experiments for job in batch)

    # -- the loop -----------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping.is_set():
            await self._queue.wait_for_work()
            if self._stopping.is_set():
                break
            batch = self._queue.take_batch(self._max_batch_size, batch_key, prefer_model=self.last_model)
            if not batch:
                continue
            try:
                await self._run_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug in our own bookkeeping: fail the batch rather than the daemon.
                log.exception("engine error while running batch %s", [job.job_id for job in batch])
                await self._fail(batch, "internal error in the engine (see the daemon log)")
            finally:
                # Cancels aimed at this batch are spent; queued jobs of those experiments left the queue already.
                with self._cancel_lock:
                    self._cancelled_experiments.clear()
            self.batches_run += 1

    async def _run_batch(self, batch: list[QueuedJob]) -> None:
        ids = [job.job_id for job in batch]
        await self._store.jobs.mark_running(ids)
        # Reported as running (queue.list, shutdown requeue) only once that is committed.
        self._running = batch
        for job in batch:
            self._events.publish("job.started", job_id=job.job_id, experiment_id=job.experiment_id, batch=ids)

        params = [_resolved(job) for job in batch]
        self.last_model = params[0].model
        loop = asyncio.get_running_loop()
        started = time.monotonic()

        def progress(step: int, total: int) -> None:
            elapsed = round(time.monotonic() - started, 3)
            loop.call_soon_threadsafe(self._announce_progress, batch, step, total, elapsed)

        try:
            written = await self._worker.run(lambda: self._generate_and_write(batch, params, progress))
        except GenerationInterrupted:
            await self._after_interrupt(batch)
            return
        except (ProviderError, ValueError) as exc:
            await self._fail(batch, str(exc))
            return
        except Exception as exc:
            log.exception("generation failed for jobs %s", ids)
            await self._fail(batch, f"{type(exc).__name__}: {exc}")
            return

        for item in written:
            image_id = await self._store.jobs.complete(item.job.job_id, item.image)
            self._events.publish(
                "job.done", job_id=item.job.job_id, experiment_id=item.job.experiment_id, image_id=image_id
            )
            if self._on_image is not None:
                self._on_image(image_id)
        self._running = []
        await self._announce_finished_experiments(batch)

    def _generate_and_write(
        self, batch: list[QueuedJob], params: list[GenerationParams], progress: Any
    ) -> list[_Written]:
        """Runs on the worker thread: torch and blocking file I/O only, no store access."""
        provider = self._providers.for_model(params[0].model)
        images = provider.generate(params, progress, lambda: self._should_stop(batch))
        written = []
        for job, generated in zip(batch, images, strict=True):
            used = generated.params.to_json_dict()
            folder = self._images_dir / f"exp-{job.experiment_id:06d}"
            folder.mkdir(parents=True, exist_ok=True)
            file = write_png_atomic(
                generated.image,
                folder,
                f"{job.idx:05d}-{generated.params.seed}.png",
                png_text_chunks(used, generated.info),
            )
            image = NewImage(
                path=file.path.relative_to(self._images_dir).as_posix(),
                sha256=file.sha256,
                size_bytes=file.size_bytes,
                seed=generated.params.seed,
                params=used,
                metadata=generated.info,
                wall_time_s=generated.wall_time_s,
                peak_memory_bytes=generated.peak_memory_bytes,
            )
            written.append(_Written(job, image))
        return written

    def _announce_progress(self, batch: list[QueuedJob], step: int, total: int, elapsed: float) -> None:
        for job in batch:
            self._events.publish(
                "job.progress",
                job_id=job.job_id,
                experiment_id=job.experiment_id,
                step=step,
                total=total,
                elapsed=elapsed,
            )

    async def _after_interrupt(self, batch: list[QueuedJob]) -> None:
        if self._stopping.is_set():
            await self._requeue(batch, reason="shutdown")
            self._running = []
            return
        with self._cancel_lock:
            cancelled_experiments = set(self._cancelled_experiments)
        cancelled = [job for job in batch if job.experiment_id in cancelled_experiments]
        survivors = [job for job in batch if job.experiment_id not in cancelled_experiments]
        if cancelled:
            await self._store.jobs.mark_cancelled([job.job_id for job in cancelled])
            for job in cancelled:
                self._events.publish("job.cancelled", job_id=job.job_id, experiment_id=job.experiment_id)
        if survivors:
            # Batch-mates of a cancelled job go back to the head of their experiment.
            await self._requeue(survivors, reason="batch-mate cancelled")
            for experiment_id in {job.experiment_id for job in survivors}:
                mates = [job for job in survivors if job.experiment_id == experiment_id]
                priority = await self._priority(experiment_id)
                self._queue.requeue_front(mates, priority)
        self._running = []
        await self._announce_finished_experiments(batch)

    async def _requeue(self, jobs: list[QueuedJob], reason: str) -> None:
        await self._store.jobs.requeue([job.job_id for job in jobs], count_attempt=False)
        for job in jobs:
            self._events.publish("job.requeued", job_id=job.job_id, experiment_id=job.experiment_id, reason=reason)

    async def _fail(self, batch: list[QueuedJob], error: str) -> None:
        for job in batch:
            await self._store.jobs.mark_failed(job.job_id, error)
            self._events.publish("job.failed", job_id=job.job_id, experiment_id=job.experiment_id, error=error)
        self._running = []
        await self._announce_finished_experiments(batch)

    async def _priority(self, experiment_id: int) -> int:
        experiment = await self._store.experiments.get(experiment_id)
        return experiment.priority if experiment is not None else 0

    async def _announce_finished_experiments(self, batch: list[QueuedJob]) -> None:
        for experiment_id in sorted({job.experiment_id for job in batch}):
            experiment = await self._store.experiments.get(experiment_id)
            if experiment is not None and experiment.counts["queued"] == 0 and experiment.counts["running"] == 0:
                self._events.publish("experiment.finished", experiment_id=experiment_id, status=experiment.status)


def _resolved(job: QueuedJob) -> GenerationParams:
    params = GenerationParams.model_validate(job.params)
    if params.seed == RANDOM_SEED:
        # Seeds are normally drawn when the experiment is created; this covers rows written by older versions.
        params = params.with_seed(secrets.randbelow(MAX_SEED + 1))
    return params
