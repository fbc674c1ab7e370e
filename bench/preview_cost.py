"""What live step previews cost: sweep throughput with a client subscribed to ``job.preview`` against none, in
one run on one daemon, rounds alternating (ABBA, so a drift in the machine's speed hits both sides alike).
Target (issue 10): at least 0.97x the throughput without a subscriber.

    .venv/bin/python bench/preview_cost.py [--rounds 2] [--cells 8] [--size 128] [--steps 10]
                                           [--every-steps 1] [--max-per-s 4]

The subscriber is a second connection that reads every frame (and counts them), as the PWA does. Beside the
throughput ratio (noisy on a shared machine) it prints the worker thread's own time spent making frames
(``PreviewService.frame_seconds``) as a share of the subscribed rounds' time: the direct cost.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from cauldron_client import Client
from harness import Bench, machine, running_daemon, wait_finished

PROMPT = "a lighthouse on a cliff at dusk"


async def _drain(client: Client, counts: dict[str, int], subscribed: asyncio.Event) -> None:
    async with client.events(["job.preview"]) as frames:
        subscribed.set()
        async for frame in frames:
            if frame["type"] == "job.preview":
                counts["frames"] += 1
                counts["bytes"] += len(frame["image"])


async def _round(bench: Bench, index: int, args: argparse.Namespace, watched: bool) -> tuple[float, dict[str, int]]:
    counts = {"frames": 0, "bytes": 0}
    watcher: asyncio.Task[None] | None = None
    second: Client | None = None
    if watched:
        token = bench.daemon.settings.token_path.read_text().strip()
        second = Client(f"http://127.0.0.1:{bench.daemon.bound_port}", token)
        await second.connect()
        subscribed = asyncio.Event()
        watcher = asyncio.create_task(_drain(second, counts, subscribed))
        await asyncio.wait_for(subscribed.wait(), 30)
    previews = bench.daemon.services.previews if bench.daemon.services else None
    made_before = previews.frames_made if previews else 0
    seconds_before = previews.frame_seconds if previews else 0.0
    started = time.perf_counter()
    created = await bench.client.call(
        "experiments.create",
        name=f"preview-cost-{index}",
        base={"prompt": PROMPT, "width": args.size, "height": args.size, "steps": args.steps, "sampler": "Euler"},
        axes={"seed": [index * 1000 + cell for cell in range(args.cells)]},
    )
    await wait_finished(bench.client, created["experiment"]["id"])
    elapsed = time.perf_counter() - started
    rate = args.cells / elapsed
    counts["made"] = (previews.frames_made if previews else 0) - made_before
    counts["frame_us"] = round(((previews.frame_seconds if previews else 0.0) - seconds_before) * 1e6)
    counts["round_us"] = round(elapsed * 1e6)
    if watcher is not None and second is not None:
        await second.close()
        await asyncio.gather(watcher, return_exceptions=True)
    return rate, counts


async def main(args: argparse.Namespace) -> None:
    settings: dict[str, Any] = {
        "preview_every_steps": args.every_steps,
        "preview_max_per_s": args.max_per_s,
        "max_batch_size": 4,
    }
    async with running_daemon(**settings) as bench:
        warm = await bench.client.call("generate", prompt=PROMPT, width=args.size, height=args.size, steps=2, seed=1)
        await wait_finished(bench.client, warm["experiment"]["id"])
        order = [False, True, True, False] * args.rounds  # ABBA
        results: dict[bool, list[float]] = {False: [], True: []}
        spent = {"frame_us": 0, "round_us": 0}
        print(f"machine: {machine()}")
        print(
            f"{args.cells} cells per round, tiny-sd {args.size}x{args.size}, {args.steps} steps (Euler), batches of 4; "
            f"preview_every_steps={args.every_steps}, preview_max_per_s={args.max_per_s}"
        )
        for index, watched in enumerate(order):
            rate, counts = await _round(bench, index, args, watched)
            results[watched].append(rate)
            if watched:
                spent["frame_us"] += counts["frame_us"]
                spent["round_us"] += counts["round_us"]
            label = "subscriber" if watched else "none      "
            print(
                f"round {index + 1:2}  {label}  {rate:6.2f} images/s  frames made {counts['made']:4}, "
                f"received {counts['frames']:4} ({counts['bytes']} bytes)"
            )
    # Every round has the same number of cells, so the mean of the per-round times gives the overall rate.
    plain = len(results[False]) / sum(1 / rate for rate in results[False])
    watched = len(results[True]) / sum(1 / rate for rate in results[True])
    ratio = watched / plain
    # Each ABBA group alone: with / without, its two subscribed rounds against its two plain ones.
    groups = [
        (2 / (1 / results[True][2 * g] + 1 / results[True][2 * g + 1]))
        / (2 / (1 / results[False][2 * g] + 1 / results[False][2 * g + 1]))
        for g in range(args.rounds)
    ]
    share = spent["frame_us"] / spent["round_us"] if spent["round_us"] else 0.0
    print(f"without a preview subscriber: {plain:6.2f} images/s")
    print(f"with a preview subscriber:    {watched:6.2f} images/s")
    print(f"ratio per ABBA group: {', '.join(f'{g:.3f}' for g in groups)} (median {statistics.median(groups):.3f})")
    print(
        f"worker time making frames: {spent['frame_us'] / 1e6:.3f} s of {spent['round_us'] / 1e6:.1f} s ({share:.3%})"
    )
    print(f"ratio with/without: {ratio:5.3f}x   target >= 0.97x: {'met' if ratio >= 0.97 else 'NOT met'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="ABBA groups (4 sweeps each)")
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--every-steps", type=int, default=1)
    parser.add_argument("--max-per-s", type=int, default=4)
    asyncio.run(main(parser.parse_args()))
