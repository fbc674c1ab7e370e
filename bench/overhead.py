"""Cells that cannot batch (every cell a different sampler/steps pair): the daemon against a bare per-cell
diffusers loop, same machine, same run. Measures what the daemon's bookkeeping costs (queue, SQLite commits,
atomic PNG writes with fsync, events). Target (issue 3): at least 0.95x the bare loop's images per second.

    .venv/bin/python bench/overhead.py [--size 128] [--repeats 1]

Each repeat uses another seed; with --repeats 1 no two cells share a batch key, so nothing batches.
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
from cauldrond.providers.diffusers.samplers import build_scheduler

SAMPLERS = ["Euler", "Euler a", "DDIM", "DPM++ 2M", "UniPC", "LMS"]
STEPS = [8, 10, 12, 14, 16, 18]
PROMPT = "a lighthouse on a cliff at dusk"


def bare_loop(model_dir: Path, size: int, repeats: int, out_dir: Path) -> float:
    pipe = StableDiffusionPipeline.from_pretrained(model_dir, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    base_config = dict(pipe.scheduler.config)
    pipe(PROMPT, num_inference_steps=2, width=size, height=size)
    started = time.perf_counter()
    count = 0
    for repeat in range(repeats):
        for sampler in SAMPLERS:
            pipe.scheduler = build_scheduler(base_config, sampler, "Automatic")
            for steps in STEPS:
                generator = torch.Generator("cpu").manual_seed(repeat)
                image = pipe(PROMPT, num_inference_steps=steps, width=size, height=size, generator=generator).images[0]
                image.save(out_dir / f"{count}.png")
                count += 1
    return count / (time.perf_counter() - started)


async def daemon_run(size: int, repeats: int) -> float:
    async with running_daemon() as bench:
        warm = await bench.client.call("generate", prompt=PROMPT, width=size, height=size, steps=2, seed=1)
        await wait_finished(bench.client, warm["experiment"]["id"])
        started = time.perf_counter()
        created = await bench.client.call(
            "experiments.create",
            name="overhead",
            base={"prompt": PROMPT, "width": size, "height": size},
            axes={"seed": list(range(repeats)), "sampler": SAMPLERS, "steps": STEPS},
        )
        await wait_finished(bench.client, created["experiment"]["id"])
        return repeats * len(SAMPLERS) * len(STEPS) / (time.perf_counter() - started)


async def main(size: int, repeats: int) -> None:
    daemon_rate = await daemon_run(size, repeats)
    threads = torch.get_num_threads()  # as the provider set it; the bare loop uses the same
    with tempfile.TemporaryDirectory() as tmp:
        bare_rate = bare_loop(create_tiny_model(Path(tmp) / "models"), size, repeats, Path(tmp))
    cells = repeats * len(SAMPLERS) * len(STEPS)
    print(f"machine: {machine()}; torch threads: {threads}")
    print(f"{cells} cells ({len(SAMPLERS)} samplers x steps {STEPS} x {repeats} seed(s)), {size}x{size}")
    print(f"bare diffusers loop: {bare_rate:6.2f} images/s")
    print(f"cauldrond:           {daemon_rate:6.2f} images/s")
    ratio = daemon_rate / bare_rate
    print(f"ratio daemon/bare: {ratio:5.3f}x   target >= 0.95x: {'met' if ratio >= 0.95 else 'NOT met'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.size, args.repeats))
