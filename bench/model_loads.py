"""A sweep with 3 models on the innermost axis: the planner must load each model exactly once (the axis order
would load one per cell). Counted from the provider's load counter and its "loaded model" log lines.

    .venv/bin/python bench/model_loads.py
"""

from __future__ import annotations

import asyncio
import logging

from harness import machine, running_daemon, wait_finished

from cauldrond.models.single_file import export_single_file
from cauldrond.models.tiny import create_tiny_model


class LoadCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("loaded model"):
            self.loads.append(record.getMessage())


async def main() -> None:
    counter = LoadCounter()
    logging.getLogger("cauldrond.providers").addHandler(counter)
    logging.getLogger("cauldrond.providers").setLevel(logging.INFO)
    async with running_daemon() as bench:
        # Three distinct models: the tiny folder, a copy under another name, and its single-file export.
        create_tiny_model(bench.models_dir, name="tiny-sd-b")
        export_single_file(bench.models_dir / "tiny-sd", bench.models_dir / "tiny-sd-c.safetensors")
        models = ["tiny-sd", "tiny-sd-b", "tiny-sd-c"]
        plan = await bench.client.call(
            "experiments.plan",
            base={"prompt": "p", "width": 64, "height": 64, "steps": 2},
            axes={"seed": [1, 2, 3, 4], "model": models},
        )
        created = await bench.client.call(
            "experiments.create",
            name="3 models innermost",
            base={"prompt": "p", "width": 64, "height": 64, "steps": 2},
            axes={"seed": [1, 2, 3, 4], "model": models},
        )
        await wait_finished(bench.client, created["experiment"]["id"])
    print(f"machine: {machine()}")
    print("12 cells, axes seed x model (model innermost: axis order would switch model 12 times)")
    print(f"planned model loads: {plan['model_loads']}")
    print(f"actual model loads:  {len(counter.loads)}")
    for line in counter.loads:
        print(f"  log: {line}")
    print(f"exactly 3 loads: {'yes' if len(counter.loads) == 3 else 'NO'}")


if __name__ == "__main__":
    asyncio.run(main())
