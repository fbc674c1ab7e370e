"""One batch on a Ray worker, from the moment it is claimed to its last commit.

The worker's ``run`` stream is read here, on the loop (each item awaited, never blocking): progress and previews
become the same ``job.progress`` and ``job.preview`` events as a local batch's, and the outcome is committed the
local way: the daemon writes the PNG files (``engine/writing.py``: atomic, fsynced) and commits each image with its
job's ``done`` before announcing it. So an image exists once, written by the daemon, whatever happened remotely.

When the stream breaks because the worker or its node died, the batch's jobs go back to the head of their
experiments: a batch that had begun is judged by the crash guard's rules (``crash_guard.py``: its jobs become
suspects, and only a suspect that dies alone at work is struck), one still waiting goes back as it was. Nothing
of the batch was committed, so nothing is done twice; the jobs run again elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image

from cauldrond.engine import replay
from cauldrond.engine.previews import PreviewFrame
from cauldrond.engine.replay import BatchShape
from cauldrond.engine.storage import storage_fault
from cauldrond.engine.writing import Written, write_images
from cauldrond.logging_setup import bind_jobs
from cauldrond.media.previews import MIME
from cauldrond.params import GenerationParams
from cauldrond.providers.base import GeneratedImage
from cauldrond.queue import QueuedJob
from cauldrond.scaleout import crash_guard

if TYPE_CHECKING:
    from cauldrond.scaleout.dispatch import RayEngine
    from cauldrond.scaleout.pool import WorkerSlot

log = logging.getLogger(__name__)


@dataclass
class RemoteBatch:
    batch_id: str
    jobs: list[QueuedJob]
    params: list[GenerationParams]
    shape: BatchShape | None
    slot: WorkerSlot
    priority: int = 0  # its experiment's, when it was claimed
    started: bool = False
    stop_sent: bool = False
    withdraw_sent: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    def of(
        cls,
        jobs: list[QueuedJob],
        params: list[GenerationParams],
        shape: BatchShape | None,
        slot: WorkerSlot,
        priority: int = 0,
    ) -> RemoteBatch:
        return cls(f"b{secrets.token_hex(6)}", jobs, params, shape, slot, priority)

    def job_at(self, position: int) -> QueuedJob | None:
        """The job whose image is at ``position`` of the denoising batch (an exact re-run sits among copies)."""
        if self.shape is not None:
            return self.jobs[0] if position == self.shape.index else None
        return self.jobs[position] if 0 <= position < len(self.jobs) else None


class RemoteBatches:
    """The batches in flight, across all workers."""

    def __init__(self, engine: RayEngine) -> None:
        self._engine = engine
        self._batches: dict[str, RemoteBatch] = {}

    def in_flight(self) -> list[RemoteBatch]:
        """Every batch sent to a worker and not yet ended: running there, or waiting behind the running one."""
        return list(self._batches.values())

    def running_jobs(self) -> list[QueuedJob]:
        return [job for batch in self._batches.values() for job in batch.jobs]

    def holding(self, job_id: int) -> WorkerSlot | None:
        """The worker a job was sent to, while it is in flight."""
        for batch in self._batches.values():
            if any(job.job_id == job_id for job in batch.jobs):
                return batch.slot
        return None

    def launch(self, slot: WorkerSlot, batch: RemoteBatch) -> None:
        self._batches[batch.batch_id] = batch
        slot.in_flight.append(batch.batch_id)
        batch.task = asyncio.create_task(self._run(batch), name=f"cauldron-ray-{batch.batch_id}")
        if any(self._engine.is_cancelled(job.experiment_id) for job in batch.jobs):
            self._stop(batch)  # cancelled between its claim and now

    def stop_experiment(self, experiment_id: int) -> int:
        """Stop (at their next step) the batches holding jobs of this experiment; how many of its jobs they hold."""
        count = 0
        for batch in list(self._batches.values()):
            held = sum(1 for job in batch.jobs if job.experiment_id == experiment_id)
            if held:
                self._stop(batch)
                count += held  # running in the database, started on the worker or waiting there
        return count

    def withdraw_waiting(self, below: int | None = None) -> None:
        """Batches waiting behind a worker's running one come back to the queue (the running one finishes, as
        locally): all of them when the queue was paused, or those ``below`` a priority that work in the queue now
        has (an experiment created or raised above theirs runs next, as it would on a local engine)."""
        for batch in list(self._batches.values()):
            if batch.started or batch.withdraw_sent or batch.slot.handle is None:
                continue
            if below is not None and batch.priority >= below:
                continue
            batch.withdraw_sent = True
            batch.slot.handle.stop.remote(batch.batch_id, True)

    async def stop_all(self, timeout: float) -> None:
        """Shutdown: every batch stops at its next step and is put back; past ``timeout`` it is put back anyway."""
        for batch in list(self._batches.values()):
            self._stop(batch)
        tasks = [batch.task for batch in self._batches.values() if batch.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        await self.abandon("shutdown")

    async def abandon(self, reason: str) -> None:
        """The cluster was lost (a stream from it may never end), or a shutdown waited long enough: every batch
        still in flight is dropped and its jobs go back uncounted; none has committed anything (a batch leaves
        this table before its first commit)."""
        left = list(self._batches.values())
        for batch in left:
            if batch.task is not None:
                batch.task.cancel()
        await asyncio.gather(*(batch.task for batch in left if batch.task is not None), return_exceptions=True)
        for batch in left:
            self._end(batch)
            await self._put_back(batch.jobs, reason)

    def _stop(self, batch: RemoteBatch) -> None:
        if batch.stop_sent or batch.slot.handle is None:
            return
        batch.stop_sent = True
        try:
            batch.slot.handle.stop.remote(batch.batch_id, False)
        except Exception as exc:  # the worker is gone: its stream ends with the error and the jobs come back
            log.debug("could not stop batch %s: %s", batch.batch_id, exc)

    def _end(self, batch: RemoteBatch) -> None:
        self._batches.pop(batch.batch_id, None)
        if batch.batch_id in batch.slot.in_flight:
            batch.slot.in_flight.remove(batch.batch_id)

    # -- one batch ----------------------------------------------------------------------------------------------

    async def _run(self, batch: RemoteBatch) -> None:
        import ray

        engine = self._engine
        bind_jobs(batch.jobs)  # this task's log lines carry its job ids
        try:
            outcome = await self._stream(batch)
        except asyncio.CancelledError:
            raise
        except ray.exceptions.RayTaskError as exc:  # a bug in the worker's own code, not a death
            self._end(batch)
            log.error("Ray worker %s failed batch %s: %s", batch.slot.key, batch.batch_id, exc)
            await engine._fail(batch.jobs, f"worker error: {str(exc).strip().splitlines()[-1][:300]}")
            return
        except ray.exceptions.RayError as exc:  # the worker's process or node died, or the cluster is unreachable
            self._end(batch)
            engine.pool.suspend(batch.slot)  # no batch goes to it while the crash guard judges (a DB write)
            if batch.started and not await crash_guard.outside_the_batch(exc, engine.pool):  # crash_guard.py's rules
                struck = await crash_guard.judge_death(engine, batch.jobs, batch.slot.key)
            else:  # waiting behind the running batch, or a death Ray puts down to something else: back as it was
                struck = False
                await self._put_back(batch.jobs, f"worker {batch.slot.key} lost")
            engine.pool.died(batch.slot, exc, blamed_on_job=struck)
            return
        except Exception:  # a bug on this side: the batch fails rather than the daemon
            self._end(batch)
            log.exception("engine error while running batch %s", batch.batch_id)
            await engine._fail(batch.jobs, "internal error in the engine (see the daemon log)")
            return
        finally:
            engine._wake.set()
        self._end(batch)
        try:
            await self._settle(batch, outcome)
        except Exception as exc:
            fault = storage_fault(exc)
            if fault is None:
                log.exception("engine error while finishing batch %s", batch.batch_id)
                await engine._fail(batch.jobs, "internal error in the engine (see the daemon log)")
            else:
                await engine._lost_to_storage(batch.jobs, fault)
        finally:
            engine.forget_cancels()
            engine.batches_run += 1

    async def _stream(self, batch: RemoteBatch) -> tuple[Any, ...]:
        engine = self._engine
        assert batch.slot.handle is not None
        expected = await engine.expected_sha256(batch.params[0].model)
        wanted = engine.previews.wanted()
        previews = (
            {"every_steps": engine.previews.every_steps, "min_interval_s": engine.previews.min_interval_s}
            if wanted
            else None
        )
        stream = batch.slot.handle.run.options(num_returns="streaming").remote(
            batch.batch_id,
            [item.to_json_dict() for item in batch.params],
            expected,
            previews,
            engine.provider_name(batch.params[0].model),
        )
        async for ref in stream:
            event = await ref
            kind = event[0]
            if kind == "started":
                batch.started = True
                suspect = crash_guard.watched_alone(batch.jobs)
                if suspect is not None:  # committed before the next event is read, so before any death is seen
                    await crash_guard.record_at_work(engine, suspect)
                ids = [job.job_id for job in batch.jobs]
                for job in batch.jobs:
                    engine._events.publish("job.started", job_id=job.job_id, experiment_id=job.experiment_id, batch=ids)
            elif kind == "progress":
                engine._announce_progress(batch.jobs, event[1], event[2], event[3])
            elif kind == "preview":
                self._preview(batch, event)
            else:
                return tuple(event)
        raise RuntimeError("the worker's stream ended without an outcome")

    def _preview(self, batch: RemoteBatch, event: tuple[Any, ...]) -> None:
        _, position, step, total, webp, width, height = event
        job = batch.job_at(position)
        if job is None:
            return
        frame = PreviewFrame(job.job_id, job.experiment_id, step, total, MIME, width, height, webp, time.time())
        self._engine.previews.deliver(frame)

    async def _settle(self, batch: RemoteBatch, outcome: tuple[Any, ...]) -> None:
        engine = self._engine
        kind = outcome[0]
        if kind == "done":
            await self._commit(batch, outcome[1], outcome[2])
        elif kind == "interrupted":
            await self._put_back(batch.jobs, "shutdown" if engine._stopping.is_set() else "stopped on its worker")
        elif kind == "refused":
            model = batch.params[0].model
            batch.slot.refused[model] = outcome[1]
            log.error("%s", outcome[1])
            await self._put_back(batch.jobs, "refused by its worker's node")
        else:
            await engine._fail(batch.jobs, str(outcome[1]))

    async def _commit(self, batch: RemoteBatch, images: list[dict[str, Any]], busy_s: float) -> None:
        engine = self._engine
        generated = [_decoded(item) for item in images]
        batch.slot.images += len(batch.jobs)
        batch.slot.busy_s += busy_s
        picked = replay.picked(generated, batch.shape)
        written: list[Written] = await engine.blocking(lambda: write_images(engine._images_dir, batch.jobs, picked))
        for position, item in enumerate(written):
            try:
                image_id = await engine._store.jobs.complete(item.job.job_id, item.image)
            except Exception as exc:
                fault = storage_fault(exc)
                if fault is None:
                    raise
                await engine._abandon_uncommitted(written[position:], fault)
                return
            engine._announce_done(item.job, image_id)
        await engine._announce_finished_experiments(batch.jobs)

    async def _put_back(self, jobs: list[QueuedJob], reason: str) -> None:
        """Jobs that did not finish: those of a cancelled experiment become ``cancelled``, the others go back to
        the head of their experiment, uncounted."""
        engine = self._engine
        cancelled = [job for job in jobs if engine.is_cancelled(job.experiment_id)]
        survivors = [job for job in jobs if job not in cancelled]
        if cancelled:
            await engine._store.jobs.mark_cancelled([job.job_id for job in cancelled])
            for job in cancelled:
                engine._events.publish("job.cancelled", job_id=job.job_id, experiment_id=job.experiment_id)
        if survivors:
            await engine._requeue(survivors, reason=reason)
            if not engine._stopping.is_set():
                await engine._back_to_front(survivors)
        await engine._announce_finished_experiments(jobs)


def _decoded(item: dict[str, Any]) -> GeneratedImage:
    width, height = item["size"]
    return GeneratedImage(
        image=Image.frombytes("RGB", (int(width), int(height)), item["rgb"]),
        params=GenerationParams.model_validate(item["params"]),
        wall_time_s=float(item["wall_time_s"]),
        peak_memory_bytes=item["peak_memory_bytes"],
        info=dict(item["info"]),
    )
