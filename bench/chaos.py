"""Chaos: SIGKILL the daemon from outside at random moments while a sweep runs, restart it each time (as systemd
would), and count what came out of it in the SQLite file: cells done, duplicates, failed, suspects, strikes,
quarantined. The crash guard must fail nothing and duplicate nothing however often an innocent sweep is killed.

Kill moments are seeded and logged; tests/daemon/chaos.py draws them uniformly within a model load plus two batches
after the daemon answers /healthz, as last measured from the daemon's own progress events, and counts a draw past
the load from the moment this life's load ends, so they land in model loads and in batches whatever the machine's
speed. A sweep through before the kills are spent gets another one (at most four in all).

    .venv/bin/python bench/chaos.py [--cells 200] [--kills 50] [--seed 1] [--size 64] [--steps 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this script's own import of the shared chaos driver (not the daemon's)

from harness import machine  # noqa: E402

from cauldrond.models.tiny import create_tiny_model  # noqa: E402
from tests.daemon.chaos import run_chaos  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=7200.0, help="give up after this many seconds")
    args = parser.parse_args()

    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="cauldron-chaos-") as folder:
        work = Path(folder)
        create_tiny_model(work / "models")
        started = time.monotonic()
        figures = await run_chaos(
            work,
            work / "models",
            cells=args.cells,
            kills=args.kills,
            seed=args.seed,
            batch_size=args.batch_size,
            size=args.size,
            steps=args.steps,
            timeout=args.timeout,
            say=lambda line: print(line, flush=True),
        )
        wall = time.monotonic() - started
    print()
    print(f"seed                 {figures.seed}")
    print(f"kills (SIGKILL)      {figures.kills}")
    print(f"kills with a batch   {figures.kills_in_batches}  (jobs left running in SQLite: loading or denoising)")
    print(f"sweeps               {figures.sweeps}  ({figures.cells} cells each)")
    print(f"cells done           {figures.done} / {figures.jobs}  (image rows {figures.images}, files {figures.files})")
    print(f"duplicates           {figures.duplicates}")
    print(f"failed               {figures.failed}")
    print(f"suspects             {figures.suspects}")
    print(f"strikes              {figures.strikes}  (most on one job: {figures.max_strikes})")
    print(f"quarantined          {figures.quarantined}")
    print(f"orphan files         {figures.orphan_files}")
    print(f"total time           {wall:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
