"""The workers the dispatcher can use: one slot per GPU of every live node (``ray_cpu_workers`` on a node without
GPUs), each slot one ``CauldronWorker`` actor pinned to its node.

The pool follows the cluster while the daemon runs: a node that joins gets its slots, a node that leaves loses
them (their batches fail over by themselves: the stream from a dead actor raises). A worker whose process dies is
restarted by Ray in place (``max_restarts``) or, when Ray cannot, made again here; one that dies
``MAX_DEATHS`` times within ``DEATH_WINDOW_S`` is dropped, with the reason shown in ``system.info``.

Runs on the event loop; the few Ray calls that block go through the dispatcher's control thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cauldrond.config import Settings
from cauldrond.scaleout import cluster

log = logging.getLogger(__name__)

T = TypeVar("T")
Blocking = Callable[[Callable[[], T]], Awaitable[T]]

MAX_DEATHS = 3
DEATH_WINDOW_S = 600.0
RAY_RESTARTS = 2  # Ray restarts a dead worker process this many times before the pool makes a new actor
START_TIMEOUT_S = 300.0  # a worker's first answer (imports torch and diffusers; a cold node is slow)
IN_FLIGHT = 2  # batches sent to a worker: one running, one ready behind it
NODES_TIMEOUT_S = 10.0  # a node listing slower than this means the cluster is not answering


@dataclass
class WorkerSlot:
    node: cluster.Node
    index: int
    handle: Any = None
    state: str = "starting"  # starting | ready | suspended | restarting | dropped | gone
    reason: str | None = None
    deaths: list[float] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # sent to it, most recent last: its loaded models (LRU)
    refused: dict[str, str] = field(default_factory=dict)  # model -> the node's refusal (hash differs)
    in_flight: list[str] = field(default_factory=list)  # batch ids sent, not yet ended
    info: dict[str, Any] = field(default_factory=dict)  # the worker's last describe()
    images: int = 0
    busy_s: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.node.node_id[:12]}/{self.index}"

    @property
    def has_room(self) -> bool:
        return self.state == "ready" and len(self.in_flight) < IN_FLIGHT

    def used(self, model: str, keep: int) -> None:
        if model in self.models:
            self.models.remove(model)
        self.models.append(model)
        del self.models[:-keep]

    def status(self) -> dict[str, Any]:
        return {
            "id": self.key,
            "node": self.node.address,
            "host": self.info.get("host"),
            "device": self.info.get("device") or ("cuda" if self.node.gpus else "cpu"),
            "state": self.state,
            "reason": self.reason,
            "loaded_models": self.info.get("loaded_models", [{"name": name} for name in self.models]),
            "current_batch": self.info.get("current_batch"),
            "batches_in_flight": len(self.in_flight),
            "loads": self.info.get("loads", 0),  # models this worker's process loaded (a restart starts at 0)
            "images": self.images,
            "images_per_s": round(self.images / self.busy_s, 3) if self.busy_s > 0 else None,
            "deaths": len(self.deaths),
            "refused": dict(self.refused),
        }


class WorkerPool:
    def __init__(self, settings: Settings, blocking: Blocking[Any], wake: Callable[[], None]) -> None:
        self._settings = settings
        self._blocking = blocking
        self._wake = wake
        self.slots: dict[tuple[str, int], WorkerSlot] = {}
        self._probes: set[asyncio.Task[None]] = set()
        self._listing: asyncio.Future[list[cluster.Node]] | None = None  # a node listing still waiting for Ray

    def ready(self) -> list[WorkerSlot]:
        return [slot for slot in self.slots.values() if slot.state == "ready"]

    def status(self) -> list[dict[str, Any]]:
        return [slot.status() for slot in sorted(self.slots.values(), key=lambda slot: slot.key)]

    async def refresh(self) -> None:
        """Match the slots to the live nodes; raises when the cluster cannot be reached (or does not answer
        within NODES_TIMEOUT_S: a head that is gone can make Ray's call wait far longer)."""
        if self._listing is None or self._listing.done():
            self._listing = asyncio.ensure_future(_on_own_thread(cluster.alive_nodes))
        nodes = await asyncio.wait_for(asyncio.shield(self._listing), NODES_TIMEOUT_S)
        live = {node.node_id: node for node in nodes}
        for (node_id, _index), slot in list(self.slots.items()):
            if node_id not in live and slot.state != "gone":
                slot.state, slot.reason = "gone", "its node left the cluster"
                log.warning("Ray worker %s: its node %s left the cluster", slot.key, slot.node.address)
        for node in nodes:
            wanted = node.gpus if node.gpus else min(self._settings.ray_cpu_workers, max(node.cpus, 1))
            for index in range(wanted):
                if (node.node_id, index) not in self.slots:
                    slot = WorkerSlot(node, index)
                    self.slots[(node.node_id, index)] = slot
                    log.info("Ray node %s: starting worker %s", node.address, slot.key)
                    self._start_probe(slot, fresh=True)

    async def cluster_answers(self) -> bool:
        """Whether the cluster's head answers a node listing now (the slots follow what it says)."""
        try:
            await self.refresh()
        except Exception:  # unreachable, or too slow to answer: lost, for the caller's purpose
            return False
        return True

    async def describe_ready(self) -> None:
        """Refresh what each ready worker reports (loaded models, current batch) for system.info."""
        for slot in self.ready():
            try:
                slot.info = await asyncio.wait_for(_awaitable(slot.handle.describe.remote()), 5.0)
            except Exception as exc:  # a worker dying now is seen by its batch; status keeps the last report
                log.debug("Ray worker %s did not describe itself: %s", slot.key, exc)

    def suspend(self, slot: WorkerSlot) -> None:
        """A batch's stream broke: nothing more is placed on the worker while its death is judged (``died``)."""
        if slot.state == "ready":
            slot.state = "suspended"

    def died(self, slot: WorkerSlot, error: BaseException, blamed_on_job: bool = False) -> None:
        """A batch's stream broke because the worker's process or node died. A death the crash guard put down to
        a job (``blamed_on_job``: a struck suspect) does not count towards dropping the worker."""
        if slot.state in ("gone", "dropped", "restarting"):
            # One death breaks both batches it holds and counts once; the batch that learns it second may be the
            # one whose job was blamed.
            if blamed_on_job and slot.state == "restarting" and slot.deaths:
                slot.deaths.pop()
            return
        now = time.monotonic()
        slot.deaths = [at for at in slot.deaths if now - at < DEATH_WINDOW_S]
        if not blamed_on_job:
            slot.deaths.append(now)
        if len(slot.deaths) >= MAX_DEATHS:
            slot.state = "dropped"
            slot.reason = f"died {len(slot.deaths)} times in {DEATH_WINDOW_S / 60:.0f} min; last: {_short(error)}"
            log.error("Ray worker %s dropped: %s", slot.key, slot.reason)
            self._kill(slot)
            return
        slot.state, slot.reason = "restarting", _short(error)
        log.warning("Ray worker %s died (%s); its jobs go back to the queue", slot.key, slot.reason)
        self._start_probe(slot, fresh=False)

    async def close(self) -> None:
        for task in self._probes:
            task.cancel()
        await asyncio.gather(*self._probes, return_exceptions=True)
        for slot in self.slots.values():
            self._kill(slot)

    def lose(self, reason: str) -> None:
        """The whole cluster was lost, and every worker with it (none is killed: nothing there answers). Probes
        stop, and a node listing still waiting on that cluster is not awaited again."""
        for task in self._probes:
            task.cancel()
        for slot in self.slots.values():
            if slot.state != "gone":
                slot.state, slot.reason = "gone", reason
            slot.handle = None
        self._listing = None

    # -- starting and reviving a worker -------------------------------------------------------------------------

    def _start_probe(self, slot: WorkerSlot, fresh: bool) -> None:
        task = asyncio.create_task(self._bring_up(slot, fresh), name=f"cauldron-ray-worker-{slot.key}")
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    async def _bring_up(self, slot: WorkerSlot, fresh: bool) -> None:
        """Wait for the worker's first answer: Ray restarting it in place, or else a new actor."""
        import ray

        for attempt in range(2):
            if fresh or attempt:
                self._kill(slot)
                slot.handle = await self._blocking(lambda: self._create(slot))
            try:
                slot.info = await asyncio.wait_for(_awaitable(slot.handle.describe.remote()), START_TIMEOUT_S)
            except (ray.exceptions.RayError, TimeoutError) as exc:
                if slot.state == "gone":
                    return  # its node left: nothing to bring back
                if fresh or attempt:
                    slot.state, slot.reason = "dropped", f"did not start: {_short(exc)}"
                    log.error("Ray worker %s dropped: %s", slot.key, slot.reason)
                    return
                continue  # Ray could not restart it: make a new one
            if slot.state in ("starting", "restarting"):
                slot.state, slot.reason = "ready", None
                log.info("Ray worker %s ready on %s (%s)", slot.key, slot.node.address, slot.info.get("device"))
                self._wake()
            return

    def _create(self, slot: WorkerSlot) -> Any:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from cauldrond.scaleout.worker import CauldronWorker

        settings = self._settings
        resources: dict[str, Any] = {"num_gpus": 1} if slot.node.gpus else {"num_cpus": 1}
        actor = ray.remote(CauldronWorker).options(  # type: ignore[call-overload]
            **resources,
            max_restarts=RAY_RESTARTS,
            max_task_retries=0,  # a batch is never run twice by Ray: the dispatcher puts it back in the queue
            max_concurrency=4,  # the batch, the ready batch behind it, stop and describe
            scheduling_strategy=NodeAffinitySchedulingStrategy(slot.node.node_id, soft=False),
        )
        device = "cuda" if slot.node.gpus else "cpu"
        return actor.remote(
            str(settings.resolved_models_dir),
            device if settings.device == "auto" else settings.device,
            settings.allow_pickle,
            settings.ray_worker_models,
            settings.ray_worker_threads,
            settings.plugins,
        )

    def _kill(self, slot: WorkerSlot) -> None:
        if slot.handle is None:
            return
        import ray

        try:
            ray.kill(slot.handle, no_restart=True)
        except Exception as exc:  # already gone, or the cluster is
            log.debug("could not kill Ray worker %s: %s", slot.key, exc)
        slot.handle = None


async def _on_own_thread(fn: Callable[[], T]) -> T:
    """``fn`` on a daemon thread of its own: one that never returns (Ray waiting on a lost head) holds up
    nothing else, and dies with the process."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result, error = fn(), None
        except BaseException as exc:  # handed to the awaiting coroutine
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed: the daemon is exiting
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="cauldron-ray-nodes", daemon=True).start()
    return await future


async def _awaitable(ref: Any) -> Any:
    return await ref


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
