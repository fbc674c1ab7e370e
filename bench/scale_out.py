"""The same sweep through a daemon with engine = "ray", first with one worker, then with two, in one run; prints
images/s of each and the ratio. Target (issue 13): two workers at least 1.7x one.

Each phase starts its own private Ray (the CPUs, or GPUs, it may use = its worker count) and daemon, warms every
worker (model loaded) before the clock starts, and times only the sweep. On CPUs each worker's torch uses
``--threads`` threads (1: two workers on two cores do not fight over them); with ``--gpus`` each worker is a GPU.

    .venv/bin/python bench/scale_out.py [--cells 24] [--size 128] [--steps 20] [--max-batch 2] [--gpus 0]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import ray
from harness import machine, running_daemon, wait_finished

PROMPT = "a lighthouse on a cliff at dusk"


async def phase(workers: int, args: argparse.Namespace) -> float:
    """Images per second of the sweep with ``workers`` Ray workers."""
    ray.init(
        address="local",
        num_cpus=max(workers, 1) if not args.gpus else None,
        num_gpus=workers if args.gpus else 0,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        async with running_daemon(
            device="auto" if args.gpus else "cpu",
            engine="ray",
            ray_cpu_workers=0 if args.gpus else workers,
            ray_worker_threads=0 if args.gpus else args.threads,
            max_batch_size=args.max_batch,
        ) as bench:
            base = {"prompt": PROMPT, "sampler": "Euler", "width": args.size, "height": args.size}
            await warm(bench.client, base, workers, args.max_batch)
            before = await images_per_worker(bench.client)
            started = time.perf_counter()
            created = await bench.client.call(
                "experiments.create",
                name="scale-out",
                base={**base, "steps": args.steps},
                axes={"seed": list(range(1, args.cells + 1))},
            )
            result = await wait_finished(bench.client, created["experiment"]["id"])
            elapsed = time.perf_counter() - started
            assert result["experiment"]["counts"]["done"] == args.cells, result["experiment"]["counts"]
            after = await images_per_worker(bench.client)
            spread = [after[key] - before.get(key, 0) for key in sorted(after)]
            rate = args.cells / elapsed
            print(f"  {workers} worker(s): {rate:.3f} images/s ({elapsed:.1f} s); sweep images per worker {spread}")
            return rate
    finally:
        ray.shutdown()


async def images_per_worker(client: Any) -> dict[str, int]:
    listed = (await client.call("system.info"))["scaleout"]["workers"]
    return {worker["id"]: worker["images"] for worker in listed}


async def warm(client: Any, base: dict[str, Any], workers: int, max_batch: int) -> None:
    """Until every worker has loaded the model (a few two-step batches), so the sweep times no load."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        created = await client.call(
            "experiments.create",
            name="warm",
            base={**base, "steps": 2},
            axes={"seed": list(range(workers * max_batch * 2))},
        )
        await wait_finished(client, created["experiment"]["id"])
        listed = (await client.call("system.info"))["scaleout"]["workers"]
        if len(listed) >= workers and all(worker["loads"] >= 1 for worker in listed):
            return
    raise TimeoutError("the workers did not all load the model")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=24)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--max-batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per CPU worker")
    parser.add_argument("--gpus", type=int, default=0, help="use this many GPUs (one worker each) in the second phase")
    args = parser.parse_args()
    print(f"scale-out: {args.cells} cells, {args.size}x{args.size}, {args.steps} steps, batch {args.max_batch}")
    print(f"machine: {machine()}")
    one = await phase(1, args)
    many_workers = args.gpus if args.gpus else 2
    many = await phase(many_workers, args)
    print(f"ratio {many_workers} workers / 1 worker: {many / one:.2f}x (target >= 1.7x)")


if __name__ == "__main__":
    asyncio.run(main())
