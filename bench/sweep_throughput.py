"""A 48-cell sweep (8 seeds × 6 CFG values, one model, one sampler, 20 steps, 128×128) through the daemon,
against a naive loop that calls the diffusers pipeline once per cell, as AUTOMATIC1111's X/Y/Z plot and ComfyUI
do. Same machine, same run, same model; both write every image as a PNG. Target (issue 3): the daemon at least
2.0× the naive loop's images per second on 2 CPU cores.

    .venv/bin/python bench/sweep_throughput.py [--size 128] [--steps 20] [--max-batch 8]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline
from harness import machine, running_daemon, wait_finished

from cauldrond.models.tiny import create_tiny_model

SEEDS = list(range(1, 9))
CFGS = [3.0, 4.5, 6.0, 7.5, 9.0, 10.5]
PROMPT = "a lighthouse on a cliff at dusk"


def naive_loop(model_dir: Path, size: int, steps: int, out_dir: Path) -> float:
    """Images per second: one pipeline call per cell, after one warm-up call."""
    pipe = StableDiffusionPipeline.from_pretrained(model_dir, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe(PROMPT, num_inference_steps=2, width=size, height=size)
    started = time.perf_counter()
    for seed in SEEDS:
        for cfg in CFGS:
            generator = torch.Generator("cpu").manual_seed(seed)
            image = pipe(
                PROMPT, num_inference_steps=steps, guidance_scale=cfg, width=size, height=size, generator=generator
            ).images[0]
            image.save(out_dir / f"{seed}-{cfg}.png")
    return len(SEEDS) * len(CFGS) / (time.perf_counter() - started)


async def daemon_sweep(size: int, steps: int, max_batch: int) -> tuple[float, float, Path]:
    async with running_daemon(max_batch_size=max_batch) as bench:
        base = {"prompt": PROMPT, "sampler": "Euler", "width": size, "height": size}
        warm = await bench.client.call("generate", **base, steps=2, seed=1)
        await wait_finished(bench.client, warm["experiment"]["id"])
        started = time.perf_counter()
        created = await bench.client.call(
            "experiments.create",
            name="throughput",
            base={**base, "steps": steps},
            axes={"seed": SEEDS, "cfg_scale": CFGS},
        )
        await wait_finished(bench.client, created["experiment"]["id"])
        elapsed = time.perf_counter() - started
        # The provider chose torch's thread count for this machine; the naive loop gets the same.
        return len(SEEDS) * len(CFGS) / elapsed, torch.get_num_threads(), bench.models_dir / "tiny-sd"


async def main(size: int, steps: int, max_batch: int) -> None:
    daemon_rate, daemon_threads, _ = await daemon_sweep(size, steps, max_batch)
    with tempfile.TemporaryDirectory() as tmp:
        model = create_tiny_model(Path(tmp) / "models")
        torch.set_num_threads(int(daemon_threads))  # the same torch threads for both, so only the method differs
        naive_rate = naive_loop(model, size, steps, Path(tmp))
    print(f"machine: {machine()}; torch threads: {daemon_threads}")
    print(f"48 cells (8 seeds x 6 CFG), tiny-sd, Euler, {steps} steps, {size}x{size}, max batch {max_batch}")
    print(f"naive loop (one pipeline call per cell): {naive_rate:6.2f} images/s")
    print(f"cauldrond (planned, batched, cached):    {daemon_rate:6.2f} images/s")
    print(
        f"ratio daemon/naive: {daemon_rate / naive_rate:5.2f}x   target >= 2.0x: "
        f"{'met' if daemon_rate / naive_rate >= 2.0 else 'NOT met'}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--max-batch", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.size, args.steps, args.max_batch))
