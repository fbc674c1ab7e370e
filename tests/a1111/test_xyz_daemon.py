"""An X/Y/Z plot run for real: script_args read, the experiment created through the daemon's experiment service,
the tiny model generating every cell, and the answer drawn from the PNGs the daemon serves."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import numpy as np
from cauldron_client import Client
from PIL import Image

from cauldrond.a1111.xyz import parse_script_args, xyz_experiment
from cauldrond.a1111.xyz_output import PlotCell, compose_xyz_output
from cauldrond.daemon import Daemon
from tests.a1111.test_xyz_args import release_args
from tests.a1111.test_xyz_grid import find
from tests.waiting import finished

SIZE = 64
MARGIN = 4


async def test_steps_by_cfg_plot_on_the_tiny_model(daemon: Daemon, client: Client) -> None:
    # X: Steps 2, 3 (index 4); Y: CFG Scale 3, 7 (index 6); legend, a 4 px margin, the images after the grid.
    request = parse_script_args(release_args(x=(4, "2-3"), y=(6, "3, 7"), margin_size=MARGIN, include_lone_images=True))
    base = {"prompt": "a lighthouse at dusk", "width": SIZE, "height": SIZE, "sampler": "Euler", "seed": -1}
    plot = xyz_experiment(request, base)
    experiment, job_ids = await daemon.services.experiments.create(
        name="xyz", kind="a1111", base=plot.base, axes=plot.axes, vary_seed=plot.vary_seed
    )
    result = await finished(client, experiment.id)
    jobs = sorted(result["jobs"], key=lambda job: job["id"])
    assert [job["id"] for job in jobs] == job_ids and all(job["status"] == "done" for job in jobs)
    # Cell i is A1111's image i: x + y * len(X), Steps varying fastest.
    assert [(job["params"]["steps"], job["params"]["cfg_scale"]) for job in jobs] == [
        (2, 3.0),
        (3, 3.0),
        (2, 7.0),
        (3, 7.0),
    ]
    assert len({job["params"]["seed"] for job in jobs}) == 1  # A1111's fix_seed: one drawn seed for the plot

    cells, batch_sizes = [], []
    for job in jobs:
        png = await client.fetch_image(job["image_id"])
        with Image.open(io.BytesIO(png)) as image:
            image.load()
            text: dict[str, str] = dict(image.text)  # type: ignore[attr-defined]
            cells.append(PlotCell(image.convert("RGB"), text["parameters"]))
        batch_sizes.append(json.loads(text["cauldron"])["info"]["batch_size"])
    # The planner batched as for any sweep: each step count's two CFG values ran as one batch of 2.
    assert batch_sizes == [2, 2, 2, 2]

    stored = await daemon.services.store.experiments.get(experiment.id)
    assert stored is not None
    out = await asyncio.to_thread(compose_xyz_output, plot, stored.spec["resolved_axes"], cells)
    assert out.kinds == ["grid", "image", "image", "image", "image"] and out.sources == [0, 0, 1, 2, 3]
    grid = out.images[0]
    left, top = find(grid, cells[0].image)  # type: ignore[arg-type]
    # 2 x 2 cells of 64 px with one 4 px margin each way, after the label bands.
    assert grid.size == (left + 2 * SIZE + MARGIN, top + 2 * SIZE + MARGIN)
    pixels = np.asarray(grid)
    for index, cell in enumerate(cells):
        x, y = left + (index % 2) * (SIZE + MARGIN), top + (index // 2) * (SIZE + MARGIN)
        assert np.array_equal(pixels[y : y + SIZE, x : x + SIZE], np.asarray(cell.image))
        assert np.array_equal(np.asarray(out.images[1 + index]), np.asarray(cell.image))
    steps_line: Any = out.infotexts[1].splitlines()[-1]
    assert steps_line.startswith("Steps: 2,") and "CFG scale: 3," in steps_line
    assert out.infotexts[0].endswith(
        'Script: X/Y/Z plot, X Type: Steps, X Values: 2-3, Y Type: CFG Scale, Y Values: "3, 7"'
    )
