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
from pathlib import Path
from typing import Any

from cauldrond.engine import replay
from cauldrond.engine.batch_sizing import BatchSizer
from cauldrond.engine.evidence import SoloEvidence, uptime_s
from cauldrond.engine.previews import PreviewService
from cauldrond.engine.setback import StorageSetback
from cauldrond.engine.storage import StorageGuard, batch_bytes, storage_fault
from cauldrond.engine.supervisor import Supervisor
from cauldrond.engine.worker import GpuWorker
from cauldrond.engine.writing import Written, write_images
from cauldrond.events import EventBus
from cauldrond.logging_setup import bind_jobs, unbind_jobs
from cauldrond.params import MAX_SEED, RANDOM_SEED, GenerationParams
from cauldrond.providers.base import GenerationInterrupted, ProviderError
from cauldrond.providers.registry import ProviderRegistry
from cauldrond.queue import JobQueue, QueuedJob, queued_job
from cauldrond.queue.batching import batch_key
from cauldrond.store import Store

log = logging.getLogger(__name__)


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
        database_path: Path | None = None,
        min_free_disk_mb: int = 0,
        storage_probe_s: float = 2.0,
        previews: PreviewService | None = None,
        auto_batch_size: bool = False,
    ) -> None:
        self._store = store
        self.previews = previews or PreviewService(events)  # live step previews, made only while wanted
        # Told each committed image id (post-processing); it must only queue work, never wait for it.
        self._on_image = on_image
        self._queue = queue
        self._events = events
        self._providers = providers
        self._images_dir = images_dir
        self._max_batch_size = max_batch_size
        # The size of each batch, measured per model, image size and device when auto (engine/batch_sizing.py).
        self.batch_sizes = BatchSizer(
            max_batch_size=max_batch_size, enabled=auto_batch_size, store=store.batch_sizes if auto_batch_size else None
        )
        self._worker = GpuWorker()
        self._task: asyncio.Task[None] | None = None
        self._stopping = threading.Event()  # read by the worker thread between denoising steps
        self._cancel_lock = threading.Lock()
        self._cancelled_experiments: set[int] = set()
        self._running: list[QueuedJob] = []
        self.ready = False
        self.batches_run = 0
        self.last_model: str | None = None  # the model the provider most likely still holds
        guard = StorageGuard(images_dir, database_path or images_dir, min_free_disk_mb, storage_probe_s)
        self.storage = StorageSetback(store, queue, events, guard)
        self._supervisor = Supervisor(self._run, self._rebuild_after_death, self._stopping.is_set)

    # -- lifecycle ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._worker.run(self._optimize_providers)
        if self.batch_sizes.enabled:
            info = await self._worker.run(self._providers.default.hardware_info)
            self.batch_sizes.device = f"{info.get('device')}:{info.get('device_name')}"
            await self.batch_sizes.load()
        self._task = asyncio.create_task(self._supervisor.run(), name="cauldron-engine")
        self.ready = True

    @property
    def failure(self) -> str | None:
        """Why the engine loop last died (it is restarted; see engine/supervisor.py), or None."""
        return self._supervisor.failure

    @property
    def restarts(self) -> int:
        return self._supervisor.restarts

    @property
    def alive(self) -> bool:
        """The engine task is running (it may be idle or paused); False once it died and was not restarted."""
        return self._task is not None and not self._task.done()

    def scaleout_status(self) -> dict[str, Any] | None:
        """The Ray cluster and its workers (``engine = "ray"``, cauldrond/scaleout/); None for this local engine."""
        return None

    def _optimize_providers(self) -> None:
        for provider in self._providers.all():
            provider.optimize_for_hardware()

    async def stop(self, timeout: float = 6.0) -> None:
        """Stop at the next denoising step and put the running jobs back as queued."""
        self.ready = False
        self._stopping.set()
        await self._clear_evidence()
        self._queue.wake()
        self.storage.guard.wake()
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
            await self._put_back_at_stop(self._running)
            self._running = []
        if self.storage.stranded and not await self.storage.settle():
            log.warning("jobs %s stay running in the database; start-up recovery requeues them", self.storage.stranded)
        self._worker.shutdown()

    async def _put_back_at_stop(self, jobs: list[QueuedJob]) -> None:
        try:
            await self._requeue(jobs, reason="shutdown")
        except Exception as exc:
            if storage_fault(exc) is None:
                raise
            self.storage.stranded.extend(jobs)

    @property
    def abandoned_work(self) -> bool:
        """After stop: the worker thread is still inside a call that could not be interrupted (a model load)."""
        return self._worker.busy

    # -- control from RPC ---------------------------------------------------------------------------------------

    @property
    def running_jobs(self) -> list[QueuedJob]:
        # Stranded jobs are still ``running`` in the database until the disk lets them be committed back.
        return [*self._running, *self.storage.stranded]

    def resume(self) -> bool:
        """``queue.resume``: lift a storage pause now (the next batch's check pauses again if still short)."""
        return self.storage.resume("resumed by request", announce=False)

    def cancel_experiment(self, experiment_id: int) -> int:
        """Ask the running batch to stop at its next step if it holds jobs of this experiment."""
        with self._cancel_lock:
            self._cancelled_experiments.add(experiment_id)
        return sum(1 for job in self._running if job.experiment_id == experiment_id)

    def withdraw_cancel(self, experiment_id: int) -> None:
        """The experiment is active again (``experiments.retry``): a cancel flag left from before must not stop
        its next batch. One aimed at a batch still running stays until that batch ends, as it should."""
        with self._cancel_lock:
            if not any(job.experiment_id == experiment_id for job in self._running):
                self._cancelled_experiments.discard(experiment_id)

    def _should_stop(self, batch: Sequence[QueuedJob]) -> bool:
        if self._stopping.is_set():
            return True
        with self._cancel_lock:
            return any(job.experiment_id in self._cancelled_experiments for job in batch)

    # -- the loop -----------------------------------------------------------------------------------------------

    async def _rebuild_after_death(self) -> None:
        """The jobs the dead loop held go back; queued rows the in-memory queue lost are added again."""
        self.storage.stranded.extend(self._running)
        self._running = []
        await self.storage.settle()
        known = {job.job_id for _, job in self._queue.ordered()} | {job.job_id for job in self.storage.stranded}
        for row in await self._store.jobs.queued():
            if row.job_id not in known:
                self._queue.add(queued_job(row), row.priority)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            if self.storage.blocking:
                await self.storage.watch(self._stopping.is_set)
                continue
            await self._queue.wait_for_work()
            if self._stopping.is_set() or self.storage.blocking:
                continue
            batch = self._queue.take_batch(
                lambda job: self.batch_sizes.size_for(job.params), batch_key, prefer_model=self.last_model
            )
            if not batch:
                continue
            needed = batch_bytes(job.params for job in batch)
            shortage = await self.storage.guard.shortage(needed)
            if shortage is not None:
                await self.storage.put_back_untouched(batch, shortage, needed)
                continue
            bind_jobs(batch)  # until the batch ends, log lines (the worker's too) carry its job ids
            try:
                await self._run_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                fault = storage_fault(exc)
                if fault is not None:
                    # A commit the batch needed failed (cancel, requeue, failure): its jobs go back, unharmed.
                    await self._lost_to_storage(self._running, fault)
                else:
                    # A bug in our own bookkeeping: fail the batch rather than the daemon.
                    log.exception("engine error while running batch %s", [job.job_id for job in batch])
                    await self._fail(batch, "internal error in the engine (see the daemon log)")
            finally:
                # Cancels aimed at this batch are spent; queued jobs of those experiments left the queue already.
                with self._cancel_lock:
                    self._cancelled_experiments.clear()
                unbind_jobs()
            self.batches_run += 1

    async def _run_batch(self, batch: list[QueuedJob]) -> None:
        try:
            marked = set(await self._store.jobs.mark_running([job.job_id for job in batch]))
        except Exception as exc:
            fault = storage_fault(exc)
            if fault is None:
                raise
            await self.storage.put_back_untouched(batch, fault)
            return
        # A job cancelled since it was taken (or queued twice by a rebuild) is not run.
        batch = [job for job in batch if job.job_id in marked]
        if not batch:
            return
        ids = [job.job_id for job in batch]
        # Reported as running (queue.list, shutdown requeue) only once that is committed.
        self._running = batch
        for job in batch:
            self._events.publish("job.started", job_id=job.job_id, experiment_id=job.experiment_id, batch=ids)

        params = [_resolved(job) for job in batch]
        shape = replay.replay_of(batch)
        if shape is not None:  # an exact re-run: the original batch's shape, around placeholders
            params = replay.padded(params[0], shape)
        self.last_model = params[0].model
        loop = asyncio.get_running_loop()
        started = time.monotonic()

        def progress(step: int, total: int) -> None:
            elapsed = round(time.monotonic() - started, 3)
            loop.call_soon_threadsafe(self._announce_progress, batch, step, total, elapsed)

        evidence = self._evidence_for(batch, loop)
        try:
            written = await self._worker.run(lambda: self._generate_and_write(batch, params, progress, evidence, loop))
        except GenerationInterrupted:
            await self._after_interrupt(batch)
            return
        except (ProviderError, ValueError) as exc:
            await self._fail(batch, str(exc))
            return
        except Exception as exc:
            fault = storage_fault(exc)
            if fault is not None:
                await self._lost_to_storage(batch, fault)
                return
            log.exception("generation failed for jobs %s", ids)
            await self._fail(batch, f"{type(exc).__name__}: {exc}")
            return

        for position, item in enumerate(written):
            try:
                image_id = await self._store.jobs.complete(item.job.job_id, item.image)
            except Exception as exc:
                fault = storage_fault(exc)
                if fault is None:
                    raise
                await self._abandon_uncommitted(written[position:], fault)
                return
            self._announce_done(item.job, image_id)
        self._running = []
        await self._announce_finished_experiments(batch)
        if shape is None:  # an exact re-run keeps another batch's shape: it measures nothing
            await self._measure_batch_size(len(batch), written)

    async def _measure_batch_size(self, taken: int, written: list[Written]) -> None:
        try:
            await self.batch_sizes.observe(taken, [item.image for item in written])
        except Exception as exc:  # the images are committed; a choice not stored is only measured again
            if storage_fault(exc) is None:
                raise
            log.warning("auto batch size: could not store the measured size: %s", exc)

    def _announce_done(self, job: QueuedJob, image_id: int) -> None:
        self._events.publish("job.done", job_id=job.job_id, experiment_id=job.experiment_id, image_id=image_id)
        if self._on_image is not None:
            self._on_image(image_id)

    async def _abandon_uncommitted(self, items: list[Written], fault: str) -> None:
        """Committing an image failed: files whose rows are not in the database go, their jobs go back."""
        lost, landed = await self.storage.sort_uncommitted(items, self._images_dir)
        for job, image_id in landed:  # the COMMIT reported failure but did land
            self._announce_done(job, image_id)
        await self._lost_to_storage(lost, fault)

    async def _lost_to_storage(self, jobs: list[QueuedJob], fault: str) -> None:
        log.error("storage failed under jobs %s (%s); they go back to the queue", [j.job_id for j in jobs], fault)
        self._running = [job for job in self._running if job not in jobs]
        await self.storage.put_back(jobs, fault)

    def _evidence_for(self, batch: list[QueuedJob], loop: asyncio.AbstractEventLoop) -> SoloEvidence | None:
        """A suspect running alone is watched by the crash guard (engine/evidence.py)."""
        if len(batch) != 1 or not batch[0].suspect:
            return None
        return SoloEvidence(batch[0].job_id, loop, self._record_at_work)

    async def _record_at_work(self, job_id: int) -> None:
        await self._store.jobs.mark_at_work_alone(job_id, uptime_s())
        if self._stopping.is_set():  # a clean shutdown began meanwhile: see _clear_evidence
            await self._store.jobs.clear_at_work()

    async def _clear_evidence(self) -> None:
        """A clean shutdown began: whatever ends the running batch now (even a SIGKILL after a stop timeout) is
        never a suspect's fault, so its evidence goes before anything else."""
        try:
            await self._store.jobs.clear_at_work()
        except Exception as exc:
            log.warning("crash guard: could not clear the evidence at shutdown: %s", exc)

    def _generate_and_write(
        self,
        batch: list[QueuedJob],
        params: list[GenerationParams],
        progress: Any,
        evidence: SoloEvidence | None,
        loop: asyncio.AbstractEventLoop,
    ) -> list[Written]:
        """Runs on the worker thread: torch and blocking file I/O only, no store access."""
        provider = self._providers.for_model(params[0].model)
        if evidence is not None:
            evidence.prepare(provider, params[0].model)
            progress = evidence.progress(progress)
        # Outermost, so the provider finds its ``latents`` hook (providers.base.StepLatents).
        progress = self.previews.for_batch(progress, batch, loop, replay.replay_of(batch))
        images = provider.generate(params, progress, lambda: self._should_stop(batch))
        return write_images(self._images_dir, batch, replay.picked(images, replay.replay_of(batch)))

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
            await self._back_to_front(survivors)
        self._running = []
        await self._announce_finished_experiments(batch)

    async def _requeue(self, jobs: list[QueuedJob], reason: str) -> None:
        await self._store.jobs.requeue([job.job_id for job in jobs], count_attempt=False)
        for job in jobs:
            self._events.publish("job.requeued", job_id=job.job_id, experiment_id=job.experiment_id, reason=reason)

    async def _fail(self, batch: list[QueuedJob], error: str) -> None:
        for position, job in enumerate(batch):
            try:
                await self._store.jobs.mark_failed(job.job_id, error)
            except Exception as exc:
                fault = storage_fault(exc)
                if fault is None:
                    raise
                # Not recorded as failed: it runs again once the disk takes writes, and fails then if it must.
                await self._lost_to_storage(batch[position:], fault)
                return
            self._events.publish("job.failed", job_id=job.job_id, experiment_id=job.experiment_id, error=error)
        self._running = []
        await self._announce_finished_experiments(batch)

    async def _back_to_front(self, jobs: list[QueuedJob]) -> None:
        """Jobs taken from the queue but not finished go back to the head of their experiments, in memory (the
        store was told already)."""
        for experiment_id in sorted({job.experiment_id for job in jobs}):
            mates = [job for job in jobs if job.experiment_id == experiment_id]
            self._queue.requeue_front(mates, await self._priority(experiment_id))

    async def _priority(self, experiment_id: int) -> int:
        experiment = await self._store.experiments.get(experiment_id)
        return experiment.priority if experiment is not None else 0

    async def _announce_finished_experiments(self, batch: list[QueuedJob]) -> None:
        for experiment_id in sorted({job.experiment_id for job in batch}):
            experiment = await self._store.experiments.get(experiment_id)
            if experiment is not None and experiment.counts["queued"] == 0 and experiment.counts["running"] == 0:
                self._events.publish("experiment.finished", experiment_id=experiment_id, status=experiment.status)


def _resolved(job: QueuedJob) -> GenerationParams:
    """The job's typed params: as validated at creation, or, for a job read back from the store, validated now
    (the stored JSON is this process's input; a row an older version wrote may no longer validate, and then the
    job fails with the reason)."""
    params = job.generation
    if params is None:
        params = GenerationParams.model_validate(replay.without_replay(job.params))
    if params.seed == RANDOM_SEED:
        # Seeds are normally drawn when the experiment is created; this covers rows written by older versions.
        params = params.with_seed(secrets.randbelow(MAX_SEED + 1))
    return params
