"""images.rerun repeats an image pixel for pixel on the CPU, also when the original ran in a batch of four
(issue 9, item 9): the re-run is denoised in a batch of the original's shape around placeholders.

Expected values are the original files' pixels. On the dev VM the same cells re-made alone (a batch of one)
differed by one level in 3 of 4 images; padded to the original shape, none differ.
"""

from __future__ import annotations

from io import BytesIO

import numpy as np
from cauldron_client import Client
from PIL import Image

from tests.conftest import FAST
from tests.waiting import finished


def pixels(data: bytes) -> np.ndarray:
    with Image.open(BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


async def test_images_made_in_a_batch_of_four_rerun_pixel_identical(client: Client) -> None:
    # The cells differ in prompt, seed and CFG, as the cells of a sweep do; they share one batch key.
    cells = [{"prompt": f"p{i}", "seed": 100 + i, "cfg_scale": 5.0 + i} for i in range(4)]
    created = await client.call(
        "experiments.create", name="batch of four", base={**FAST, "sampler": "Euler a"}, cells=cells
    )
    await finished(client, created["experiment"]["id"])
    originals = (await client.call("images.list", experiment_id=created["experiment"]["id"]))["images"]
    assert sorted(image["metadata"]["batch_index"] for image in originals) == [0, 1, 2, 3]
    assert {image["metadata"]["batch_size"] for image in originals} == {4}, "the four ran as one batch"

    identical: dict[int, bool] = {}
    repeats = []
    for original in originals:
        rerun = await client.call("images.rerun", image_id=original["id"])
        await finished(client, rerun["experiment"]["id"])
        (repeat,) = (await client.call("images.list", experiment_id=rerun["experiment"]["id"]))["images"]
        assert repeat["params"] == original["params"]
        expected = pixels(await client.fetch_image(original["id"]))
        identical[original["seed"]] = np.array_equal(pixels(await client.fetch_image(repeat["id"])), expected)
        repeats.append((original, repeat))
    assert identical == dict.fromkeys(identical, True)
    for original, repeat in repeats:
        assert repeat["metadata"]["batch_size"] == 4
        assert repeat["metadata"]["batch_index"] == original["metadata"]["batch_index"]
