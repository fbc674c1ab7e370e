"""Auto batch size against a fixed batch of 4, both against the naive per-cell loop, in one run: the 48-cell sweep
of bench/sweep_throughput.py (8 seeds x 6 CFG values, tiny-sd, Euler) through a daemon with ``auto_batch_size =
false`` and ``max_batch_size = 4`` (the default before auto sizing), before and after one with ``auto_batch_size =
true`` and the bound raised to 16: its first sweep includes the probe (on real cells), its second runs at the size
it chose; each daemon runs the sweep twice and the second is compared. Issue 11 measured, on another small model:
batch 4 = 2.00x, batch 8 = 2.27x the naive loop.

    .venv/bin/python bench/auto_batch.py [--size 128] [--steps 20] [--bound 16]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import torch
from harness import Bench, machine, running_daemon, wait_finished
from sweep_throughput import CFGS, PROMPT, SEEDS, naive_loop

from cauldrond.models.tiny import create_tiny_model

CELLS = len(SEEDS) * len(CFGS)


async def one_sweep(bench: Bench, size: int, steps: int) -> float:
    """Images per second of one 48-cell sweep, from creation to its last commit."""
    started = time.perf_counter()
    created = await bench.client.call(
        "experiments.create",
        name="throughput",
        base={"prompt": PROMPT, "sampler": "Euler", "width": size, "height": size, "steps": steps},
        axes={"seed": SEEDS, "cfg_scale": CFGS},
    )
    await wait_finished(bench.client, created["experiment"]["id"])
    return CELLS / (time.perf_counter() - started)


async def daemon_rates(size: int, steps: int, bound: int, auto: bool) -> tuple[list[float], str, int]:
    """Images/s of two sweeps in one daemon (after a 2-step warm-up at another size, so the probe of this size
    still happens in the first sweep), the chosen sizes, and torch's thread count."""
    async with running_daemon(max_batch_size=bound, auto_batch_size=auto) as bench:
        other = size + 64 if size < 128 else size // 2
        base = {"prompt": PROMPT, "sampler": "Euler", "width": other, "height": other}
        warm = await bench.client.call("generate", **base, steps=2, seed=1)
        await wait_finished(bench.client, warm["experiment"]["id"])
        rates = []
        for sweep in (1, 2):
            rates.append(await one_sweep(bench, size, steps))
            print(f"{'auto' if auto else 'fixed'} sweep {sweep}: {rates[-1]:.2f} images/s", file=sys.stderr, flush=True)
        sizer = bench.daemon.services.engine.batch_sizes
        chosen = ", ".join(f"{c['width']}x{c['height']}: {c['batch_size']}" for c in sizer.describe()) or "fixed"
        return rates, chosen, torch.get_num_threads()


async def main(size: int, steps: int, bound: int) -> None:
    # Fixed, auto, fixed again: a machine whose load drifts (the dev VM is shared) shifts both fixed phases
    # around the auto one, and their mean is what auto is compared with.
    before, _, threads = await daemon_rates(size, steps, 4, auto=False)
    auto, chosen, _ = await daemon_rates(size, steps, bound, auto=True)
    after, _, _ = await daemon_rates(size, steps, 4, auto=False)
    fixed = (before[1] + after[1]) / 2
    with tempfile.TemporaryDirectory() as tmp:
        model = create_tiny_model(Path(tmp) / "models")
        torch.set_num_threads(int(threads))  # the same torch threads for all, so only the method differs
        naive = naive_loop(model, size, steps, Path(tmp))
    print(f"machine: {machine()}; torch threads: {threads}")
    print(f"{CELLS} cells (8 seeds x 6 CFG), tiny-sd, Euler, {steps} steps, {size}x{size}")
    print(f"naive loop (one pipeline call per cell):        {naive:6.2f} images/s")
    print(f"fixed batch 4, before auto (sweep 1 / 2):       {before[0]:6.2f} / {before[1]:6.2f} images/s")
    print(f"auto (bound {bound}), sweep 1 with probe / sweep 2: {auto[0]:6.2f} / {auto[1]:6.2f} images/s")
    print(f"fixed batch 4, after auto (sweep 1 / 2):        {after[0]:6.2f} / {after[1]:6.2f} images/s")
    print(f"auto chose: {chosen}")
    print(f"ratio fixed-4/naive:             {fixed / naive:5.2f}x")
    print(f"ratio auto/naive (with probe):   {auto[0] / naive:5.2f}x")
    print(f"ratio auto/naive (calibrated):   {auto[1] / naive:5.2f}x")
    print(f"ratio auto/fixed-4 (calibrated): {auto[1] / fixed:5.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--bound", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.size, args.steps, args.bound))
