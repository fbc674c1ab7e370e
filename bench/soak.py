"""Soak: a long sweep while many clients watch and poll. Reports the daemon's RSS at start, middle and end
(target: under 10% growth after warm-up), the p99 of system.info round-trips while the engine is busy (target:
under 20 ms) and how many events the subscribers lost.

The daemon runs as its own process (``python -m cauldrond``) so its RSS is its own, not this script's.
Each of the ``--clients`` connections subscribes to every event type and polls ``experiments.list`` and
``queue.list``; one more connection probes ``system.info`` every 20 ms. Every loop is bounded by ``--timeout``.

    .venv/bin/python bench/soak.py [--cells 2000] [--clients 20] [--size 64] [--steps 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import statistics
import subprocess  # nosec B404 - starts this repository's own daemon with fixed arguments
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from cauldron_client import Client
from harness import machine

from cauldrond.models.tiny import create_tiny_model

MiB = 1 << 20
# RSS "start" is the first reading once this many images are done (model loaded, caches filled): 10% of the
# cells, at most 100. "middle" is the reading halfway in time between start and end, so a run cut short by
# --timeout still reports three comparable points.
WARM_UP_FRACTION = 0.1
WARM_UP_MAX_IMAGES = 100


def percentile(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def rss_marks(
    readings: list[tuple[float, int, int]], warm_up_images: int
) -> tuple[tuple[float, int, int], tuple[float, int, int], tuple[float, int, int]] | None:
    """(start, middle, end) among (seconds, images done, rss) readings; None when warm-up never ended."""
    warm = [reading for reading in readings if reading[1] >= warm_up_images]
    if len(warm) < 2:
        return None
    start, end = warm[0], warm[-1]
    halfway = (start[0] + end[0]) / 2
    middle = min(warm, key=lambda reading: abs(reading[0] - halfway))
    return start, middle, end


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Watcher:
    """One of the soak's clients: its event counts and list latencies."""

    events: int = 0
    jobs_done: set[int] = field(default_factory=set)
    dropped_by_daemon: int = 0
    dropped_by_client: int = 0
    list_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class DaemonProcess:
    def __init__(self, root: Path) -> None:
        self.data_dir = root / "data"
        self.models_dir = root / "models"
        self.port = free_port()
        self.log_path = root / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> psutil.Process:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        command = [sys.executable, "-m", "cauldrond", "--data-dir", str(self.data_dir)]
        command += ["--models-dir", str(self.models_dir), "--port", str(self.port), "--device", "cpu"]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)  # nosec B603
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cauldrond exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.url + "/healthz", timeout=1) as response,  # nosec B310 - loopback
            ):
                if response.status == 200:
                    return psutil.Process(self.proc.pid)
            time.sleep(0.2)
        raise RuntimeError("cauldrond did not become healthy")

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


async def watch(
    url: str, token: str, experiment_id: int, ready: asyncio.Event, stop: asyncio.Event, poll_s: float
) -> Watcher:
    """Subscribe to every event and poll the lists until ``stop``; never blocks the reader (events are drained
    by their own task). Sets ``ready`` once subscribed."""
    seen = Watcher()
    async with Client(url, token) as client:
        stream = client.events()
        await stream.start()
        ready.set()

        async def drain() -> None:
            async with stream:
                while not stop.is_set():
                    event = await stream.next(0.5)
                    if event is None:
                        continue
                    seen.events += 1
                    kind = event.get("type")
                    if kind == "events.dropped":
                        if event.get("source") == "client":
                            seen.dropped_by_client += int(event.get("count", 0))
                        else:
                            seen.dropped_by_daemon += int(event.get("count", 0))
                    elif kind == "job.done" and event.get("experiment_id") == experiment_id:
                        seen.jobs_done.add(int(event["job_id"]))

        drainer = asyncio.create_task(drain())
        await asyncio.sleep(random.uniform(0, poll_s))  # nosec B311 - spreading the pollers, not security
        while not stop.is_set():
            for method in ("experiments.list", "queue.list"):
                started = time.perf_counter()
                try:
                    await client.call(method, limit=20)
                except Exception as exc:  # a soak reports failures; it does not stop at the first
                    seen.errors.append(f"{method}: {exc}")
                seen.list_ms.append((time.perf_counter() - started) * 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_s)
        await drainer
    return seen


async def probe(url: str, token: str, stop: Any, busy: list[float], idle: list[float]) -> None:
    async with Client(url, token) as client:
        while not stop.is_set():
            started = time.perf_counter()
            await client.call("system.info")
            elapsed = (time.perf_counter() - started) * 1000
            queue = await client.call("queue.list", limit=1)
            (busy if queue["running"] else idle).append(elapsed)
            await asyncio.sleep(0.02)


def probe_process(url: str, token: str, stop: Any, results: Any) -> None:
    """The latency probe in a process of its own, so the watchers' event handling in this script does not
    inflate what it measures."""
    busy: list[float] = []
    idle: list[float] = []
    asyncio.run(probe(url, token, stop, busy, idle))
    results.send((busy, idle))


async def soak(args: argparse.Namespace, daemon: DaemonProcess, process: psutil.Process) -> None:
    token = (daemon.data_dir / "token").read_text().strip()
    rss: list[tuple[float, int, int]] = []  # (seconds since create, done, rss bytes)
    async with Client(daemon.url, token) as control:
        rss_boot = process.memory_info().rss
        stop = asyncio.Event()
        # Paused until every watcher has subscribed, so each can be expected to see every job.done.
        await control.call("queue.pause")
        created = await control.call(
            "experiments.create",
            name="soak",
            base={"prompt": "a soak test", "width": args.size, "height": args.size, "steps": args.steps},
            axes={"seed": list(range(1, args.cells + 1))},
        )
        experiment_id = int(created["experiment"]["id"])
        readiness = [asyncio.Event() for _ in range(args.clients)]
        watchers = [
            asyncio.create_task(watch(daemon.url, token, experiment_id, ready, stop, args.poll)) for ready in readiness
        ]
        async with asyncio.timeout(120):
            await asyncio.gather(*(ready.wait() for ready in readiness))
        await control.call("queue.resume")
        started = time.monotonic()
        context = multiprocessing.get_context("spawn")
        probe_stop = context.Event()
        receive, send = context.Pipe(duplex=False)
        prober = context.Process(target=probe_process, args=(daemon.url, token, probe_stop, send), daemon=True)
        prober.start()
        deadline = started + args.timeout
        done = failed = 0
        while time.monotonic() < deadline:
            result = await control.call("experiments.get", experiment_id=experiment_id, jobs_limit=0)
            counts = result["experiment"]["counts"]
            done, failed = counts["done"], counts["failed"]
            resident = process.memory_info().rss
            rss.append((time.monotonic() - started, done, resident))
            if counts["queued"] == 0 and counts["running"] == 0:
                break
            await asyncio.sleep(2)
        elapsed = time.monotonic() - started
        rss.append((elapsed, done, process.memory_info().rss))
        # Let the last job.done events reach the subscribers before counting them.
        await asyncio.sleep(2)
        stop.set()
        probe_stop.set()
        seen = await asyncio.gather(*watchers)
        busy, idle = await asyncio.to_thread(receive.recv)
        prober.join(30)

    list_ms = [ms for w in seen for ms in w.list_ms]
    marks = rss_marks(rss, min(int(WARM_UP_FRACTION * args.cells), WARM_UP_MAX_IMAGES))
    print(f"machine: {machine()}")
    print(
        f"{args.cells} cells, tiny-sd {args.size}x{args.size}, {args.steps} steps; {args.clients} subscribing clients"
    )
    print(f"finished: done {done}, failed {failed} in {elapsed:.0f} s ({done / elapsed:.2f} images/s)")
    if done + failed < args.cells:
        print(f"  STOPPED by --timeout {args.timeout:.0f} s with {args.cells - done - failed} cells not run")
    print(f"daemon RSS at boot {rss_boot / MiB:.0f} MiB; peak {max(r for _, _, r in rss) / MiB:.0f} MiB")
    if marks is None:
        print("RSS growth after warm-up: warm-up not reached, no figure")
    else:
        for name, (at_s, at_done, resident) in zip(("start", "middle", "end"), marks, strict=True):
            print(f"  RSS {name:6s} ({at_done:5d} done, {at_s:6.0f} s): {resident / MiB:7.1f} MiB")
        growth = (marks[2][2] - marks[0][2]) / marks[0][2] * 100
        verdict = "met" if growth < 10 else "NOT met"
        print(f"RSS growth after warm-up (start -> end): {growth:+.1f}%   target < 10%: {verdict}")
    p99_busy = percentile(busy, 99)
    print(
        f"system.info while busy: {len(busy)} calls, p50 {percentile(busy, 50):.2f} ms, p99 {p99_busy:.2f} ms   "
        f"target p99 < 20 ms: {'met' if p99_busy < 20 else 'NOT met'}"
    )
    print(
        f"system.info while idle: {len(idle)} calls, "
        f"p50 {percentile(idle, 50):.2f} ms, p99 {percentile(idle, 99):.2f} ms"
    )
    print(
        f"list polls (experiments.list, queue.list, limit 20): {len(list_ms)} calls, "
        f"p50 {percentile(list_ms, 50):.2f} ms, p99 {percentile(list_ms, 99):.2f} ms"
    )
    events = sum(w.events for w in seen)
    by_daemon = sum(w.dropped_by_daemon for w in seen)
    by_client = sum(w.dropped_by_client for w in seen)
    complete = sum(1 for w in seen if len(w.jobs_done) == done)
    print(f"events received: {events}; dropped by the daemon: {by_daemon}, by the client buffers: {by_client}")
    print(f"subscribers that saw every job.done: {complete} of {len(seen)}")
    errors = [e for w in seen for e in w.errors]
    print(f"RPC errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between one client's list polls")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="give up after this many seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cauldron-soak-") as tmp:
        root = Path(tmp)
        create_tiny_model(root / "models")
        daemon = DaemonProcess(root)
        process = daemon.start()
        try:
            asyncio.run(soak(args, daemon, process))
        finally:
            code = daemon.stop()
            print(f"daemon exit code after SIGTERM: {code}")


if __name__ == "__main__":
    main()
