"""``engine = "ray"``: the engine as a dispatcher. It claims batches from the queue as the local engine does
(``mark_running`` committed first), keeps every Ray worker busy (one batch running, one ready behind it), and
places each batch by model affinity. What comes back is handled by ``remote_batch.py`` exactly as a local batch:
the daemon writes the PNG files and commits each image with its job's ``done`` before announcing it.

It inherits the local engine's bookkeeping (storage pauses, failing, requeueing, cancel flags, announcements,
the supervisor) and replaces only the loop and what the loop runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from cauldrond.config import Settings
from cauldrond.engine import Engine, replay
from cauldrond.engine.engine import _resolved
from cauldrond.engine.storage import batch_bytes, storage_fault
from cauldrond.engine.worker import GpuWorker
from cauldrond.queue import QueuedJob
from cauldrond.queue.batching import batch_key
from cauldrond.scaleout import cluster
from cauldrond.scaleout.pool import WorkerPool, WorkerSlot
from cauldrond.scaleout.remote_batch import RemoteBatch, RemoteBatches

log = logging.getLogger(__name__)
T = TypeVar("T")

TICK_S = 0.2  # the loop looks at the queue and the workers at least this often
REFRESH_S = 1.0  # how often the cluster's nodes are listed (joins and departures)
RECONNECT_S = 5.0  # between attempts to reach a cluster that cannot be reached
# ray.shutdown of a driver whose head is gone takes 5 s (Ray 2.60); one whose head does not answer at all (frozen,
# a cut network) waits until it answers or dies, and the next ray.init waits behind it on the control thread.
LEAVE_TIMEOUT_S = 30.0
NOT_CONNECTED = "not connected yet"
CLUSTER_LOST = "the Ray cluster was lost"  # the reason given for jobs put back when it is


class RayEngine(Engine):
    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self._control = GpuWorker("cauldron-ray")  # Ray's blocking calls, never on the loop
        self._writer = GpuWorker("cauldron-ray-writer")  # PNG writes and model hashes (blocking I/O)
        self._wake = asyncio.Event()
        self._queue.on_change(self._wake.set)  # new or re-ranked work is placed now, not at the next tick
        self.pool = WorkerPool(settings, self._control.run, self._wake.set)
        self.batches = RemoteBatches(self)
        self.connected = False
        self.cluster_error: str | None = NOT_CONNECTED
        self._started_ray = False
        self._attached_to_lost = False  # Ray's driver here still belongs to a cluster that was lost
        self._last_refresh = 0.0
        self._last_describe = 0.0

    async def blocking(self, fn: Callable[[], T]) -> T:
        return await self._writer.run(fn)

    # -- status -------------------------------------------------------------------------------------------------

    @property
    def running_jobs(self) -> list[QueuedJob]:
        return [*self.batches.running_jobs(), *self.storage.stranded]

    def scaleout_status(self) -> dict[str, Any] | None:
        return {
            "engine": "ray",
            "address": self.settings.ray_address,
            "connected": self.connected,
            "error": self.cluster_error,
            "workers": self.pool.status(),
        }

    # -- control from RPC ---------------------------------------------------------------------------------------

    def cancel_experiment(self, experiment_id: int) -> int:
        with self._cancel_lock:
            self._cancelled_experiments.add(experiment_id)
        return self.batches.stop_experiment(experiment_id)

    def withdraw_cancel(self, experiment_id: int) -> None:
        with self._cancel_lock:
            if not any(job.experiment_id == experiment_id for job in self.batches.running_jobs()):
                self._cancelled_experiments.discard(experiment_id)

    def is_cancelled(self, experiment_id: int) -> bool:
        with self._cancel_lock:
            return experiment_id in self._cancelled_experiments

    def forget_cancels(self) -> None:
        """Cancel flags of experiments with no batch in flight are spent (their queued jobs left already)."""
        holding = {job.experiment_id for job in self.batches.running_jobs()}
        with self._cancel_lock:
            self._cancelled_experiments &= holding

    # -- lifecycle ----------------------------------------------------------------------------------------------

    async def stop(self, timeout: float = 6.0) -> None:
        self.ready = False
        self._stopping.set()
        await self._clear_evidence()
        self._wake.set()
        self._queue.wake()
        self.storage.guard.wake()
        await self.batches.stop_all(timeout)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.pool.close()
        if self.storage.stranded and not await self.storage.settle():
            log.warning("jobs %s stay running in the database; start-up recovery requeues them", self.storage.stranded)
        if self._started_ray and not self._attached_to_lost:  # leaving a lost one takes seconds and helps nobody
            await asyncio.wait_for(self._control.run(cluster.disconnect), timeout)
        self._control.shutdown()
        self._writer.shutdown()
        self._worker.shutdown()

    async def _rebuild_after_death(self) -> None:
        await self.batches.stop_all(6.0)
        await super()._rebuild_after_death()

    # -- the loop -----------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping.is_set():
            if not self.connected:
                await self._connect()
                continue
            now = time.monotonic()
            if now - self._last_refresh >= REFRESH_S:
                self._last_refresh = now
                await self._refresh()
                if not self.connected:
                    continue
            if self.storage.blocking:
                await self.storage.watch(self._stopping.is_set)
                continue
            if self._queue.paused:
                self.batches.withdraw_waiting()  # the ready batches come back; running ones finish
            else:
                await self._fill()
                top = self._queue.top_priority()
                if top is not None:  # work the workers have no room for: it outranks the batches waiting there?
                    self.batches.withdraw_waiting(below=top)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_S)

    async def _connect(self) -> None:
        address = self.settings.ray_address
        if self.cluster_error == NOT_CONNECTED:
            # ray.init may take a while; until it returns, this is the status.
            self.cluster_error = f"connecting to the Ray cluster at {address}"
            log.info("%s; batches wait in the queue until it answers", self.cluster_error)
        try:
            if self._attached_to_lost:
                await self._leave_lost_cluster()
            self._started_ray = await self._control.run(lambda: cluster.connect(address)) or self._started_ray
            await self.pool.refresh()
        except Exception as exc:
            # Joined but the listing failed: that cluster is as good as lost, and is left before the next try.
            self._attached_to_lost = await self._control.run(cluster.is_connected)
            self._lost(f"cannot reach the Ray cluster at {address}: {_why(exc)}")
            await self._sleep(RECONNECT_S)
            return
        self.connected, self.cluster_error = True, None
        log.info("connected to Ray (%s): %d worker slot(s)", address, len(self.pool.slots))

    async def _leave_lost_cluster(self) -> None:
        """Ray's driver stays attached to a lost cluster (``ray.is_initialized()`` stays true), and a head started
        again at the same address is a new cluster that it cannot use: shut the driver down so that ray.init can
        join anew. Its workers went with the lost cluster."""
        try:
            await asyncio.wait_for(self._control.run(cluster.disconnect), LEAVE_TIMEOUT_S)
        except TimeoutError:
            log.warning(
                "Ray's driver has not shut down after %.0f s (its head does not answer); the daemon joins again once "
                "it has",
                LEAVE_TIMEOUT_S,
            )
        self._attached_to_lost = False
        self.pool.slots.clear()

    async def _refresh(self) -> None:
        try:
            await self.pool.refresh()
        except Exception as exc:
            await self._lose(f"lost the Ray cluster at {self.settings.ray_address}: {_why(exc)}")
            return
        if time.monotonic() - self._last_describe >= 2.0:
            self._last_describe = time.monotonic()
            await self.pool.describe_ready()

    async def _lose(self, reason: str) -> None:
        """The cluster stopped answering. The batches still in flight there are put back (their streams may never
        end; none of them has committed anything), its workers are listed gone, and the loop tries to join again
        every RECONNECT_S, leaving the lost cluster first."""
        self._lost(reason)
        self.connected = False
        self._attached_to_lost = True
        self.pool.lose(CLUSTER_LOST)  # before the first await: status never shows ready workers of a lost cluster
        await self.batches.abandon(CLUSTER_LOST)
        await self._sleep(RECONNECT_S)

    def _lost(self, reason: str) -> None:
        if reason != self.cluster_error:
            log.error("%s; the queue is kept and work resumes when the cluster answers", reason)
        self.cluster_error = reason

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when stop() wakes the loop."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    # -- placement ----------------------------------------------------------------------------------------------

    async def _fill(self) -> None:
        """Give every worker with room a batch: the worker with the least work asks first, preferring the model
        it last ran; the batch then goes to the best worker for its model (``_place``)."""
        while not self._stopping.is_set() and not self._queue.paused:
            roomy = sorted((slot for slot in self.pool.ready() if slot.has_room), key=_load_of)
            if not roomy:
                return
            asker = roomy[0]
            prefer = asker.models[-1] if asker.models else None
            batch = self._queue.take_batch(self._max_batch_size, batch_key, prefer_model=prefer)
            if not batch:
                return
            try:
                params = [_resolved(job) for job in batch]
            except ValueError as exc:  # a stored row that no longer validates fails with the reason
                await self._claim_and_fail(batch, str(exc))
                continue
            shape = replay.replay_of(batch)
            if shape is not None:
                params = replay.padded(params[0], shape)
            model = params[0].model
            slot = self._place(model, roomy)
            if slot is None:
                refusals = self._refusals(model)
                if refusals is not None:
                    await self._claim_and_fail(batch, refusals)
                    continue
                await self._back_to_front(batch)  # its model's worker is busy: it waits for it
                return
            if not await self._room_on_disk(batch):
                return
            claimed = await self._claim(batch)
            if claimed is None:
                continue
            if len(claimed) != len(batch):  # some were cancelled since they were taken
                batch, params, shape = claimed, [_resolved(job) for job in claimed], None
            self.last_model = model
            slot.used(model, self.settings.ray_worker_models)
            priority = await self._priority(batch[0].experiment_id)
            self.batches.launch(slot, RemoteBatch.of(batch, params, shape, slot, priority))

    def _place(self, model: str, roomy: list[WorkerSlot]) -> WorkerSlot | None:
        usable = [slot for slot in roomy if model not in slot.refused]
        holding = [slot for slot in usable if model in slot.models]
        if holding:
            return min(holding, key=_load_of)
        empty = [slot for slot in usable if not slot.models]
        if empty:
            return min(empty, key=_load_of)
        busy_holders = [
            slot for slot in self.pool.ready() if model in slot.models and model not in slot.refused and slot.in_flight
        ]
        # A load costs more than waiting for the worker that has the model, unless much of its work is queued.
        if busy_holders and self._queued_of(model) <= 2 * self._max_batch_size:
            return None
        return min(usable, key=lambda slot: (len(slot.in_flight), len(slot.models))) if usable else None

    def _refusals(self, model: str) -> str | None:
        """Every live worker refused the model (its file differs from the daemon's): the reasons, else None."""
        live = [
            slot for slot in self.pool.slots.values() if slot.state in ("ready", "suspended", "starting", "restarting")
        ]
        if live and all(model in slot.refused for slot in live):
            return "; ".join(slot.refused[model] for slot in live)
        return None

    def _queued_of(self, model: str) -> int:
        return sum(1 for _, job in self._queue.ordered() if job.params.get("model") == model)

    async def _room_on_disk(self, batch: list[QueuedJob]) -> bool:
        needed = batch_bytes(job.params for job in batch)
        shortage = await self.storage.guard.shortage(needed)
        if shortage is None:
            return True
        await self.storage.put_back_untouched(batch, shortage, needed)
        return False

    async def _claim(self, batch: list[QueuedJob]) -> list[QueuedJob] | None:
        """Commit the batch ``running``; the jobs that changed (a job cancelled since it was taken is not run)."""
        try:
            marked = set(await self._store.jobs.mark_running([job.job_id for job in batch]))
        except Exception as exc:
            fault = storage_fault(exc)
            if fault is None:
                raise
            await self.storage.put_back_untouched(batch, fault)
            return None
        claimed = [job for job in batch if job.job_id in marked]
        return claimed or None

    async def _claim_and_fail(self, batch: list[QueuedJob], error: str) -> None:
        claimed = await self._claim(batch)
        if claimed is not None:
            await self._fail(claimed, error)

    def provider_name(self, model: str) -> str:
        """The provider the daemon would run ``model`` with; the worker makes its own instance of it."""
        return str(self._providers.for_model(model).name)

    async def expected_sha256(self, model: str) -> str | None:
        """The daemon's own file's hash of ``model``, if it has the model (its store remembers hashes)."""
        try:
            provider = self._providers.for_model(model)
        except Exception:
            return None
        hash_of = getattr(provider, "model_sha256", None)
        if not callable(hash_of):
            return None
        try:
            value = await self._writer.run(lambda: hash_of(model))
        except Exception as exc:  # not on this machine: only the workers' own files count
            log.debug("no daemon-side hash of %s: %s", model, exc)
            return None
        return value if isinstance(value, str) else None


def _load_of(slot: WorkerSlot) -> tuple[int, str]:
    return (len(slot.in_flight), slot.key)


def _why(error: BaseException) -> str:
    """One line on why Ray could not be reached. Ray words two causes obscurely: a WrongClusterID means a new head
    answers at the address; an InvalidAuthToken, deep in ray.init's chained errors, that the cluster wants a token
    the daemon does not send."""
    if isinstance(error, TimeoutError):
        return "no answer in time"
    text = str(error).strip()
    if "WrongClusterID" in text:
        return "its head was restarted (a new cluster answers at the address)"
    causes: list[str] = []
    cause = error.__cause__ or error.__context__
    while cause is not None and len(causes) < 5:
        causes.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    if any("InvalidAuthToken" in item for item in [text, *causes]):
        return (
            "the cluster refused the daemon's token: set RAY_AUTH_MODE=token and the cluster's token "
            "(~/.ray/auth_token or RAY_AUTH_TOKEN_PATH) in the daemon's environment (docs/scale-out.md)"
        )
    lines = text.splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]
