"""Bounded waits for asynchronous outcomes; every loop here gives up after a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cauldron_client import Client


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 60.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def finished(client: Client, experiment_id: int, timeout: float = 120.0) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        result = await client.call("experiments.get", experiment_id=experiment_id)
        counts = result["experiment"]["counts"]
        return result if counts["queued"] == 0 and counts["running"] == 0 else None

    result: dict[str, Any] = await until(check, timeout)
    return result
