"""What every benchmark needs: a daemon on the tiny model in a temporary data dir, a connected client, and
machine details to print beside the figures."""

from __future__ import annotations

import asyncio
import os
import platform
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cauldron_client import Client

from cauldrond.config import Settings
from cauldrond.daemon import Daemon
from cauldrond.models.tiny import create_tiny_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass
class Bench:
    daemon: Daemon
    client: Client
    root: Path

    @property
    def models_dir(self) -> Path:
        return self.root / "models"


@asynccontextmanager
async def running_daemon(device: str = "cpu", **settings: Any) -> AsyncIterator[Bench]:
    with tempfile.TemporaryDirectory(prefix="cauldron-bench-") as tmp:
        root = Path(tmp)
        create_tiny_model(root / "models")
        daemon = Daemon(Settings(data_dir=root / "data", port=0, models_dir=root / "models", device=device, **settings))
        await daemon.start()
        try:
            token = daemon.settings.token_path.read_text().strip()
            async with Client(f"http://127.0.0.1:{daemon.bound_port}", token) as client:
                yield Bench(daemon, client, root)
        finally:
            await daemon.stop()


async def wait_finished(client: Client, experiment_id: int, timeout: float = 3600.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with client.events(["experiment.finished"]) as stream:
        while loop.time() < deadline:
            result: dict[str, Any] = await client.call("experiments.get", experiment_id=experiment_id, jobs_limit=0)
            counts = result["experiment"]["counts"]
            if counts["queued"] == 0 and counts["running"] == 0:
                return result
            await stream.next(1.0)
    raise TimeoutError(f"experiment {experiment_id} did not finish in {timeout} s")


def machine() -> str:
    return f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
