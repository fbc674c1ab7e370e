"""Abuse item 5 (issue 9): concurrent grid requests are drawn one at a time on the renders pool, each holding its
own pixels plus one decoded cell; system.info is answered meanwhile; the schema's max_pixels cannot ask for a
grid Pillow would refuse to open as a decompression bomb."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cauldron_client import Client, RpcError
from PIL import Image

from cauldrond.daemon import Daemon
from cauldrond.media.grid import MAX_GRID_PIXELS
from tests.conftest import FAST
from tests.rpc.abuse import assert_alive
from tests.waiting import finished

CELL_PIXELS = 64 * 64


async def test_six_grids_at_once_are_drawn_one_at_a_time(daemon: Daemon, client: Client) -> None:
    created = await client.call(
        "experiments.create", name="grids", base=FAST, axes={"seed": [1, 2], "cfg_scale": [5.0, 7.0]}
    )
    experiment_id = created["experiment"]["id"]
    await finished(client, experiment_id)
    before = await client.call("experiments.get", experiment_id=experiment_id)
    requests: list[dict[str, Any]] = [
        {"x": "seed", "y": "cfg_scale"},
        {"x": "cfg_scale", "y": "seed"},
        {"x": "seed", "fixed": {"cfg_scale": 5.0}},
        {"x": "seed", "fixed": {"cfg_scale": 7.0}},
        {"x": "cfg_scale", "fixed": {"seed": 1}},
        {"x": "cfg_scale", "fixed": {"seed": 2}},
    ]
    calls = [asyncio.create_task(client.call("experiments.grid", experiment_id=experiment_id, **r)) for r in requests]
    await assert_alive(daemon)
    replies = await asyncio.gather(*calls)
    grids = [grid for reply in replies for grid in reply["grids"]]
    assert len({grid["url"] for grid in grids}) == len(requests)  # six different grids were drawn

    results = daemon.services.results  # type: ignore[union-attr]
    assert results.pool.peak_running == 1
    largest = max(grid["width"] * grid["height"] for grid in grids)
    assert results.memory.peak <= largest + CELL_PIXELS  # one grid and one decoded cell at a time
    assert results.memory.held == 0
    for grid in grids:
        with Image.open(grid["file"]) as drawn:
            assert drawn.size == (grid["width"], grid["height"])
    assert await client.call("experiments.get", experiment_id=experiment_id) == before  # nothing changed


def test_the_largest_grid_allowed_can_be_opened_by_pillow() -> None:
    # Pillow raises DecompressionBombError above twice its MAX_IMAGE_PIXELS: what we draw must stay readable.
    assert MAX_GRID_PIXELS < 2 * Image.MAX_IMAGE_PIXELS


async def test_max_pixels_over_the_cap_is_invalid_params(daemon: Daemon, client: Client) -> None:
    created = await client.call("experiments.create", name="g", base=FAST, axes={"seed": [1, 2]})
    experiment_id = created["experiment"]["id"]
    for too_many in (MAX_GRID_PIXELS + 1, 400_000_000):
        with pytest.raises(RpcError) as caught:
            await client.call("experiments.grid", experiment_id=experiment_id, x="seed", max_pixels=too_many)
        assert caught.value.code == "invalid_params" and "max_pixels" in caught.value.message
    await assert_alive(daemon)
