"""The daemon's Prometheus metrics, served at ``GET /metrics`` (docs/operations.md lists them and the alerts
worth having).

Each daemon owns a ``DaemonMetrics`` with a registry of its own, never prometheus_client's global one: tests run
several daemons in one process, and a daemon's figures must not leak into another's page.

Three kinds of figures:
- counted as things happen: job outcomes, images, batch sizes and denoising-step times are read off the event
  bus (``observe_event``, an ``EventBus`` tap, so no event is missed and the engine needs no calls of its own);
  RPC requests by method and error code with their latency (``rpc_request``, around every method call);
  crash-guard verdicts (``job.suspected`` and ``job.quarantined`` events, or ``crash_guard_event``);
- read when scraped (``_LiveReadings``): queue depth, open connections, post-processing outcomes (the plugin
  runtime counts them), free disk space, device memory, the last start-up recovery's figures, model loads
  (a provider may keep a ``model_load_seconds`` histogram made by ``model_load_histogram``);
- the process itself (CPU seconds, resident memory, open files) from prometheus_client's ProcessCollector.
"""

from __future__ import annotations

import asyncio
import resource
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psutil
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from cauldrond.rpc.protocol import RpcError

if TYPE_CHECKING:
    from cauldrond.services import Services

PREFIX = "cauldron"
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
LOAD_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)
RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
# Job events that end a job's run, and the outcome label each counts as.
FINISHED = {"job.done": "done", "job.failed": "failed", "job.cancelled": "cancelled", "job.requeued": "requeued"}
CRASH_GUARD_KINDS = ("suspect", "quarantine")
UNKNOWN_METHOD = "unknown"  # the label for names that are not methods: clients cannot mint label values


def model_load_histogram() -> Histogram:
    """For a provider: a histogram of its model-load seconds, in no registry; every daemon that serves the
    provider reports it (``cauldron_model_load_seconds{provider=...}``)."""
    return Histogram("model_load_seconds", "Seconds to load a model", buckets=LOAD_BUCKETS, registry=None)


@dataclass
class _BatchClock:
    """The batch in progress, as the events tell it: its first job's id and its last step's time."""

    lead_job: int
    last_step: int = 0
    last_elapsed: float = 0.0


@dataclass
class LiveSources:
    """What the scrape reads besides the services: the web application's RPC connection accounting."""

    open_connections: int = 0
    rpc_in_flight: int = 0


class DaemonMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.jobs_finished = Counter(
            f"{PREFIX}_jobs_finished",
            "Job runs that ended, by outcome (requeued: put back in the queue, e.g. at shutdown or disk full)",
            ["outcome"],
            registry=registry,
        )
        self.images = Counter(
            f"{PREFIX}_images", "Images generated and committed; rate() of it is images per second", registry=registry
        )
        self.batch_size = Histogram(
            f"{PREFIX}_batch_size", "Jobs per batch the engine started", buckets=BATCH_BUCKETS, registry=registry
        )
        self.step_seconds = Histogram(
            f"{PREFIX}_denoising_step_seconds",
            "Seconds per denoising step of a whole batch (from step 2 on: the first also encodes the prompts)",
            buckets=STEP_BUCKETS,
            registry=registry,
        )
        self.rpc_requests = Counter(
            f"{PREFIX}_rpc_requests",
            "RPC method calls by method and result code (ok, or the error's code)",
            ["method", "code"],
            registry=registry,
        )
        self.rpc_seconds = Histogram(
            f"{PREFIX}_rpc_request_seconds",
            "Seconds from a method call's dispatch to its result",
            ["method"],
            buckets=RPC_BUCKETS,
            registry=registry,
        )
        self.crash_guard = Counter(
            f"{PREFIX}_crash_guard_events",
            "Crash guard verdicts at start: suspect (a job the daemon died under, or a suspect struck again), "
            "quarantine (failed for crashing the daemon)",
            ["kind"],
            registry=registry,
        )
        for outcome in FINISHED.values():
            self.jobs_finished.labels(outcome)  # present at 0, so rate() and alerts see the series from the start
        for kind in CRASH_GUARD_KINDS:
            self.crash_guard.labels(kind)
        self.live = _LiveReadings()
        registry.register(self.live)
        ProcessCollector(registry=registry)
        self._batch: _BatchClock | None = None

    # -- counted as things happen ----------------------------------------------------------------------------

    def observe_event(self, event: dict[str, Any]) -> None:
        """An ``EventBus`` tap."""
        kind = event.get("type")
        if kind == "job.started":
            batch = event.get("batch") or [event.get("job_id")]
            if event.get("job_id") == batch[0]:  # every job of the batch announces it; count it once
                self.batch_size.observe(len(batch))
                self._batch = _BatchClock(lead_job=int(batch[0]))
        elif kind == "job.progress":
            self._observe_step(event)
        elif kind in FINISHED:
            self.jobs_finished.labels(FINISHED[kind]).inc()
            if kind == "job.done":
                self.images.inc()
        elif kind == "job.suspected":  # at start: a new suspect, or a suspect struck again
            self.crash_guard_event("suspect")
        elif kind == "job.quarantined":
            self.crash_guard_event("quarantine")

    def _observe_step(self, event: dict[str, Any]) -> None:
        clock = self._batch
        if clock is None or event.get("job_id") != clock.lead_job:
            return
        step, elapsed = int(event.get("step", 0)), float(event.get("elapsed", 0.0))
        # Step 1's time includes encoding the prompts, and a retried chunk (out of memory) starts over at step 1.
        if step == clock.last_step + 1 and clock.last_step >= 1:
            self.step_seconds.observe(max(0.0, elapsed - clock.last_elapsed))
        clock.last_step, clock.last_elapsed = step, elapsed

    def crash_guard_event(self, kind: str, count: int = 1) -> None:
        """For the crash guard: ``"suspect"`` for each job it makes a suspect, ``"quarantine"`` for each it
        quarantines."""
        if kind not in CRASH_GUARD_KINDS:
            raise ValueError(f"crash guard event kinds are {CRASH_GUARD_KINDS}, got {kind!r}")
        self.crash_guard.labels(kind).inc(count)

    @contextmanager
    def rpc_request(self, method: str) -> Iterator[None]:
        """Around one method call: counts it by its outcome's code and times it. ``method`` must be a registered
        name or ``UNKNOWN_METHOD``."""
        started = time.perf_counter()
        code = "ok"
        try:
            yield
        except RpcError as exc:
            code = exc.code
            raise
        except BaseException as exc:
            # What the connection answers for these: internal_error, or nothing when it was cancelled.
            code = "cancelled" if isinstance(exc, asyncio.CancelledError) else "internal_error"
            raise
        finally:
            self.rpc_requests.labels(method, code).inc()
            self.rpc_seconds.labels(method).observe(time.perf_counter() - started)

    # -- the page ----------------------------------------------------------------------------------------------

    def exposition(self, services: Services, sources: LiveSources) -> bytes:
        """The text page for one scrape."""
        self.live.services, self.live.sources = services, sources
        try:
            return generate_latest(self.registry)
        finally:
            self.live.services = None


class _LiveReadings(Collector):
    """Figures read when scraped, from the running daemon's parts."""

    def __init__(self) -> None:
        self.services: Services | None = None
        self.sources = LiveSources()
        self._memory_peak: dict[str, int] = {}

    def describe(self) -> list[Metric]:
        return []  # the families depend on what is running; describing none keeps registration cheap

    def collect(self) -> Iterator[Metric]:
        services = self.services
        if services is None:
            return
        yield from self._queue(services)
        yield from self._postprocess(services)
        yield from self._storage(services)
        yield from self._memory()
        yield from self._recovery(services)
        yield from self._model_loads(services)

    def _queue(self, services: Services) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            f"{PREFIX}_queue_jobs", "Jobs waiting in the queue and running now", labels=["status"]
        )
        depth.add_metric(["queued"], len(services.queue))
        depth.add_metric(["running"], len(services.engine.running_jobs))
        yield depth
        engine = services.engine
        paused = GaugeMetricFamily(
            f"{PREFIX}_queue_paused",
            "1 while the queue starts no batch: by the owner (queue.pause) or for storage (disk full, I/O errors)",
            labels=["cause"],
        )
        paused.add_metric(["owner"], _flag(services.queue.paused))
        paused.add_metric(["storage"], _flag(engine.storage.guard.paused))
        yield paused
        yield GaugeMetricFamily(
            f"{PREFIX}_engine_up",
            "1 while the engine task runs (idle or paused included); 0 once it died for good (/healthz 503)",
            value=_flag(engine.ready and engine.alive),
        )
        yield CounterMetricFamily(
            f"{PREFIX}_engine_restarts", "Times the engine loop died of a bug and was restarted", value=engine.restarts
        )
        yield GaugeMetricFamily(f"{PREFIX}_rpc_connections", "Open RPC WebSockets", value=self.sources.open_connections)
        yield GaugeMetricFamily(
            f"{PREFIX}_rpc_in_flight", "RPC requests running now, all connections", value=self.sources.rpc_in_flight
        )

    def _postprocess(self, services: Services) -> Iterator[Metric]:
        outcomes = CounterMetricFamily(
            f"{PREFIX}_postprocess_runs",
            "Post-processing calls by plugin and outcome (ok, failed, timeout) since the daemon started",
            labels=["plugin", "outcome"],
        )
        runtime = services.plugin_runtime
        if runtime is not None:
            for name, status in sorted(runtime.statuses.items()):
                if status.status != "loaded":
                    continue
                outcomes.add_metric([name, "ok"], status.processed)
                outcomes.add_metric([name, "failed"], status.failed)
                outcomes.add_metric([name, "timeout"], status.timed_out)
        yield outcomes
        runner = services.postprocess
        if runner is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_postprocess_pending", "Post-processing calls queued or running", value=runner.pending
            )
            yield CounterMetricFamily(
                f"{PREFIX}_postprocess_dropped",
                "Post-processing calls dropped because their queue was full",
                value=runner.dropped,
            )

    def _storage(self, services: Services) -> Iterator[Metric]:
        images_dir = services.settings.images_dir
        try:
            free = shutil.disk_usage(images_dir).free
        except OSError:
            return  # the folder is gone or unreadable: no figure beats a wrong one
        yield GaugeMetricFamily(
            f"{PREFIX}_disk_free_bytes", "Free bytes on the file system of the images folder", value=free
        )
        minimum = getattr(services.settings, "min_free_disk_mb", None)
        if isinstance(minimum, int):
            yield GaugeMetricFamily(
                f"{PREFIX}_disk_min_free_bytes",
                "The min_free_disk_mb setting in bytes: below it the queue pauses",
                value=minimum * 1024 * 1024,
            )

    def _memory(self) -> Iterator[Metric]:
        device, in_use, peak = device_memory()
        self._memory_peak[device] = max(self._memory_peak.get(device, 0), peak, in_use)
        used = GaugeMetricFamily(
            f"{PREFIX}_device_memory_bytes",
            "Memory the generator uses now: CUDA/MPS allocations, or the process's resident memory on CPU",
            labels=["device"],
        )
        used.add_metric([device], in_use)
        yield used
        high = GaugeMetricFamily(
            f"{PREFIX}_device_memory_peak_bytes", "The most device_memory_bytes reached since start", labels=["device"]
        )
        high.add_metric([device], self._memory_peak[device])
        yield high

    def _recovery(self, services: Services) -> Iterator[Metric]:
        figures = GaugeMetricFamily(
            f"{PREFIX}_recovery_items",
            "What the start-up recovery found (jobs requeued, failed, suspects, quarantined, files removed...)",
            labels=["item"],
        )
        for item, value in sorted(services.recovery.items()):
            count = len(value) if isinstance(value, list | tuple | set | dict) else value
            if isinstance(count, int | float) and not isinstance(count, bool):
                figures.add_metric([item], count)
        yield figures

    def _model_loads(self, services: Services) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            f"{PREFIX}_model_load_seconds", "Seconds to load a model, by provider", labels=["provider"]
        )
        for provider in services.providers.all():
            histogram = getattr(provider, "model_load_seconds", None)
            if not isinstance(histogram, Histogram):
                continue
            buckets: list[tuple[str, float]] = []
            total = 0.0
            for metric in histogram.collect():
                for sample in metric.samples:
                    if sample.name.endswith("_bucket"):
                        buckets.append((sample.labels["le"], sample.value))
                    elif sample.name.endswith("_sum"):
                        total = sample.value
            family.add_metric([provider.name], buckets, total)
        yield family


def _flag(value: bool) -> float:
    return 1.0 if value else 0.0


def device_memory() -> tuple[str, int, int]:
    """(device, bytes in use, peak bytes) for the device torch computes on: CUDA or MPS allocations when torch
    has started using one, else the process's resident memory (peak from getrusage)."""
    torch = sys.modules.get("torch")  # never imported here: without torch loaded there is no device memory
    if torch is not None:
        cuda = torch.cuda
        if cuda.is_available() and cuda.is_initialized():
            return "cuda", int(cuda.memory_allocated()), int(cuda.max_memory_allocated())
        mps = getattr(torch, "mps", None)
        if mps is not None and torch.backends.mps.is_available() and hasattr(mps, "current_allocated_memory"):
            allocated = int(mps.current_allocated_memory())
            if allocated:
                return "mps", allocated, allocated
    rss = int(psutil.Process().memory_info().rss)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return "cpu", rss, int(peak if sys.platform == "darwin" else peak * 1024)
