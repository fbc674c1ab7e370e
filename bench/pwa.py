"""The web app's budgets, measured in Debian's Chromium against a real cauldrond subprocess (issue 10):

1. Shell weight: HTML + JS + CSS transferred on the first load, as sent on the wire (gzip). Target <= 100 KB.
2. Event-to-screen latency: a job.progress event's timestamp (the daemon's clock when it published it) to the
   moment the Now screen's step counter shows that step (a MutationObserver in the page; same machine, same
   clock). Target p95 <= 100 ms.
3. Gallery: with 10,000 images in the store, the first page of thumbnails on a tablet: time until the page's
   tiles are in the DOM and every tile image in the viewport has loaded, and the bytes it took. Cold (the daemon
   makes each thumbnail on first request) and warm (thumbnails already on disk; a fresh browser cache).

    .venv/bin/python bench/pwa.py [--steps 30] [--cells 4] [--size 256] [--images 10000]

The preview's cost on sweep throughput is bench/preview_cost.py.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cauldron_client import Client
from harness import machine
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from cauldrond.models.tiny import create_tiny_model
from cauldrond.store import Store

CHROMIUM = os.environ.get("CAULDRON_CHROMIUM", "/usr/bin/chromium")
TABLET = {"viewport": {"width": 1024, "height": 1366}, "has_touch": True}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
SHELL_TYPES = {"document", "script", "stylesheet"}
# Recorded in the page before any of its scripts run (an init script is not subject to the page's CSP): every
# change of the Now screen's step counter, with the wall clock the daemon's event timestamps use.
STEP_OBSERVER = """
window.__stepsShown = [];
new MutationObserver((records) => {
  const now = Date.now() / 1000;
  for (const record of records) {
    const node = record.target;
    if (node.classList && node.classList.contains('now-step-count') && node.dataset.step) {
      window.__stepsShown.push([now, Number(node.dataset.step)]);
    }
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-step'] });
"""
GALLERY_READY = """
async (count) => {
  const started = performance.now();
  for (;;) {
    const tiles = [...document.querySelectorAll('.gallery-tile img')];
    const visible = tiles.filter((img) => img.getBoundingClientRect().top < window.innerHeight);
    if (tiles.length >= count && visible.length && visible.every((img) => img.complete && img.naturalWidth > 0)) {
      return { ms: performance.now(), tiles: tiles.length, visible: visible.length };
    }
    if (performance.now() - started > 120000) return { ms: null, tiles: tiles.length, visible: visible.length };
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
"""


class Daemon:
    def __init__(self, data_dir: Path, models_dir: Path) -> None:
        self.data_dir = data_dir
        self.models_dir = models_dir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.data_dir / "token").read_text().strip()

    def start(self) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        command = [sys.executable, "-m", "cauldrond", "--data-dir", str(self.data_dir), "--models-dir"]
        command += [str(self.models_dir), "--port", str(self.port), "--device", "cpu"]
        log = (self.data_dir.parent / "daemon.log").open("ab")
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("cauldrond did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)

    def call(self, method: str, **params: Any) -> Any:
        """One RPC with the local token, on a thread of its own: Playwright's sync API owns this one's loop."""

        async def run() -> Any:
            async with Client(self.url, self.token) as client:
                return await client.call(method, **params)

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, run()).result(600)


def paired(browser: Browser, daemon: Daemon, device: dict[str, Any]) -> BrowserContext:
    context = browser.new_context(**device, base_url=daemon.url)
    code = daemon.call("pairing.create_code")["code"]
    body = json.dumps({"code": code, "device_name": "bench"})
    reply = context.request.post("/pair", data=body, headers={"Content-Type": "application/json", "Origin": daemon.url})
    assert reply.ok, reply.text()
    return context


def shell_weight(browser: Browser, daemon: Daemon) -> None:
    context = paired(browser, daemon, PHONE)
    page = context.new_page()
    sent: list[tuple[str, str, int, int]] = []

    def finished(request: Any) -> None:
        if request.resource_type in SHELL_TYPES and request.url.startswith(daemon.url):
            response = request.response()
            wire = request.sizes()["responseBodySize"]
            sent.append((request.resource_type, request.url, wire, len(response.body()) if response else 0))

    page.on("requestfinished", finished)
    page.goto("/")
    page.get_by_role("navigation", name="Screens").wait_for()
    page.wait_for_load_state("networkidle")
    context.close()
    wire = sum(row[2] for row in sent)
    raw = sum(row[3] for row in sent)
    print(f"\n1. shell weight (first load, phone): {len(sent)} files")
    for kind in sorted(SHELL_TYPES):
        rows = [row for row in sent if row[0] == kind]
        print(f"   {kind:<10} {len(rows):>3} files  {sum(r[2] for r in rows) / 1024:7.1f} KB on the wire")
    verdict = "met" if wire <= 100 * 1024 else "NOT met"
    print(f"   total {wire / 1024:.1f} KB compressed ({raw / 1024:.1f} KB uncompressed); target <= 100 KB: {verdict}")


def event_latency(browser: Browser, daemon: Daemon, args: argparse.Namespace) -> None:
    events: list[tuple[float, int]] = []
    done = threading.Event()
    subscribed = threading.Event()

    async def record() -> None:
        async with Client(daemon.url, daemon.token) as client, client.events(["job.progress"]) as stream:
            subscribed.set()
            while not done.is_set():
                event = await stream.next(0.5)
                if event is not None and event["type"] == "job.progress":
                    events.append((float(event["ts"]), int(event["step"])))

    recorder = threading.Thread(target=lambda: asyncio.run(record()), daemon=True)
    recorder.start()
    subscribed.wait(30)
    context = paired(browser, daemon, PHONE)
    context.add_init_script(STEP_OBSERVER)
    page = context.new_page()
    page.goto("/")
    page.get_by_role("navigation", name="Screens").wait_for()
    base = {"prompt": "a lighthouse", "width": args.size, "height": args.size, "steps": args.steps, "sampler": "Euler"}
    created = daemon.call("experiments.create", name="latency", base=base, axes={"seed": list(range(args.cells))})
    experiment_id = created["experiment"]["id"]
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        counts = daemon.call("experiments.get", experiment_id=experiment_id, jobs_limit=0)["experiment"]["counts"]
        if counts["queued"] == 0 and counts["running"] == 0:
            break
        time.sleep(0.5)
    shown: list[tuple[float, int]] = page.evaluate("() => window.__stepsShown")
    context.close()
    done.set()
    recorder.join(10)
    latencies = []
    for at, step in shown:
        # The event that put this step on screen: the latest one for that step published before it showed.
        candidates = [ts for ts, s in events if s == step and ts <= at]
        if candidates:
            latencies.append((at - max(candidates)) * 1000)
    print(f"\n2. event-to-screen latency: {len(events)} job.progress events, {len(shown)} step changes on screen")
    if len(latencies) >= 2:
        p95 = statistics.quantiles(latencies, n=20, method="inclusive")[-1]
        print(
            f"   median {statistics.median(latencies):.1f} ms, p95 {p95:.1f} ms, max {max(latencies):.1f} ms; "
            f"target p95 <= 100 ms: {'met' if p95 <= 100 else 'NOT met'}"
        )


async def fill_gallery(data_dir: Path, count: int) -> None:
    """``count`` real image rows whose files are hard links to one 512x512 PNG (so thumbnails are real work)."""
    images = data_dir / "images" / "bench"
    images.mkdir(parents=True)
    source = images / "source.png"
    Image.effect_noise((512, 512), 64).convert("RGB").save(source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    size = source.stat().st_size
    store = await Store.open(data_dir / "cauldron.sqlite3")
    per = 1000
    for start in range(0, count, per):
        experiment_id, job_ids = await store.experiments.create(
            name=f"bench {start // per}", kind="sweep", spec={}, priority=0, cells=[{"prompt": "p"}] * per
        )
        rows = []
        for offset, job_id in enumerate(job_ids):
            n = start + offset
            os.link(source, images / f"{n}.png")
            params = json.dumps({"model": "tiny-sd", "sampler": "Euler", "prompt": f"image {n}", "steps": 20})
            rows.append((job_id, experiment_id, f"bench/{n}.png", digest, size, n, params))
        async with store.database.write() as db:
            await db.executemany(
                "INSERT INTO images (job_id, experiment_id, path, sha256, size_bytes, seed, params, metadata, "
                "wall_time_s, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, '{}', 0.1, '2026-11-30T00:00:00.000+00:00')",
                rows,
            )
            await db.execute("UPDATE jobs SET status = 'done' WHERE experiment_id = ?", (experiment_id,))
    await store.close()


def gallery(browser: Browser, daemon: Daemon, count: int) -> None:
    print(f"\n3. gallery, first page with {count:,} images in the store (tablet)")
    for label in ("cold", "warm"):
        context = paired(browser, daemon, TABLET)
        page = context.new_page()
        thumbs: list[int] = []

        def counted(request: Any, into: list[int] = thumbs) -> None:
            if "/thumbs/" in request.url:
                into.append(request.sizes()["responseBodySize"])

        page.on("requestfinished", counted)
        page.goto("/gallery")
        ready = page.evaluate(GALLERY_READY, 24)
        context.close()
        if ready["ms"] is None:
            print(f"   {label}: the first page did not finish loading in 120 s ({ready})")
            continue
        print(
            f"   {label}: {ready['ms']:.0f} ms from navigation to {ready['visible']} visible thumbnails loaded "
            f"({ready['tiles']} tiles in the DOM); {len(thumbs)} thumbnails, {sum(thumbs) / 1024:.1f} KB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="cauldron-pwa-bench-") as tmp:
        root = Path(tmp)
        create_tiny_model(root / "models")
        (root / "gallery").mkdir()
        asyncio.run(fill_gallery(root / "gallery", args.images))  # before Playwright's sync API owns the loop
        with sync_playwright() as playwright:
            run_in_browser(playwright, root, args)


def run_in_browser(playwright: Any, root: Path, args: argparse.Namespace) -> None:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
    try:
        (root / "data").mkdir()
        for data_dir, measure in (
            (root / "data", lambda d: (shell_weight(browser, d), event_latency(browser, d, args))),
            (root / "gallery", lambda d: gallery(browser, d, args.images)),
        ):
            daemon = Daemon(data_dir, root / "models")
            daemon.start()
            try:
                measure(daemon)
            finally:
                daemon.stop()
    finally:
        browser.close()


if __name__ == "__main__":
    main()
