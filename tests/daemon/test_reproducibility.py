"""A seed gives the same pixels for a given model/sampler/steps on CPU, alone or queued among other work."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import numpy as np
from cauldron_client import Client
from PIL import Image

from tests.conftest import FAST
from tests.waiting import finished

CELL = {**FAST, "sampler": "Euler a", "steps": 3, "seed": 7}


async def pixels_of(client: Client, experiment_id: int) -> dict[tuple[Any, ...], np.ndarray]:
    await finished(client, experiment_id)
    images = (await client.call("images.list", experiment_id=experiment_id))["images"]
    out = {}
    for image in images:
        params = image["params"]
        png = await client.fetch_image(image["id"])
        key = (params["sampler"], params["steps"], params["seed"])
        out[key] = np.asarray(Image.open(BytesIO(png)).convert("RGB"), dtype=np.int16)
    return out


async def test_same_seed_same_pixels_alone_and_among_others(client: Client) -> None:
    alone = await client.call("generate", **CELL)
    reference = (await pixels_of(client, alone["experiment"]["id"]))[("Euler a", 3, 7)]

    again = await client.call("generate", **CELL)
    assert np.array_equal((await pixels_of(client, again["experiment"]["id"]))[("Euler a", 3, 7)], reference)

    # Among cells that cannot share its batch (other sampler/steps), queued around it in one experiment.
    mixed = await client.call(
        "experiments.create", base=CELL, cells=[{"sampler": "DDIM"}, {}, {"steps": 2}, {"sampler": "Euler"}]
    )
    assert np.array_equal((await pixels_of(client, mixed["experiment"]["id"]))[("Euler a", 3, 7)], reference)

    # In one denoising batch with other seeds: equal up to float rounding (batching adds no more than that).
    batched = await client.call("experiments.create", base=CELL, axes={"seed": [3, 7, 11]})
    in_batch = (await pixels_of(client, batched["experiment"]["id"]))[("Euler a", 3, 7)]
    assert int(np.abs(in_batch - reference).max()) <= 2

    # A different seed really is different.
    other = await client.call("generate", **{**CELL, "seed": 8})
    assert not np.array_equal((await pixels_of(client, other["experiment"]["id"]))[("Euler a", 3, 8)], reference)
