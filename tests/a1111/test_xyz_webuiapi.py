"""The X/Y/Z plot end to end: webuiapi (from PyPI) sends txt2img with ``script_name`` to a real daemon over HTTP,
the plot runs as one experiment, and the answer comes back as A1111 gives it: the grid, then the images."""

from __future__ import annotations

import numpy as np
import pytest
import webuiapi
from PIL import Image

from tests.a1111.conftest import DaemonThread, a1111_experiments
from tests.a1111.test_xyz_args import WEBUIAPI_TXT2IMG, release_args
from tests.a1111.test_xyz_grid import find

SIZE = 64
MARGIN = 4


def client(daemon: DaemonThread) -> webuiapi.WebUIApi:
    api = webuiapi.WebUIApi(host="127.0.0.1", port=daemon.daemon.bound_port, sampler="Euler", steps=2)
    api.set_auth("anyone", daemon.token)
    return api


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def test_readme_plot_steps_by_cfg(a1111: DaemonThread) -> None:
    before = len(a1111_experiments(a1111))
    # webuiapi README's form: "X/Y/Z Plot", 11 arguments, booleans as strings; the images after the grid.
    result = client(a1111).txt2img(
        prompt="a lighthouse at dusk",
        width=SIZE,
        height=SIZE,
        seed=1234,
        script_name="X/Y/Z Plot",
        script_args=[
            WEBUIAPI_TXT2IMG.index("Steps"),
            "2-3",
            WEBUIAPI_TXT2IMG.index("CFG Scale"),
            "3, 7",
            WEBUIAPI_TXT2IMG.index("Nothing"),
            "",
            "True",
            "True",
            "False",
            "False",
            MARGIN,
        ],
    )
    assert len(a1111_experiments(a1111)) == before + 1  # one experiment for the whole plot
    assert len(result.images) == 5  # the grid, then the 2 x 2 images
    grid, cells = result.images[0], result.images[1:]
    assert all(cell.size == (SIZE, SIZE) for cell in cells)
    left, top = find(grid, cells[0])
    assert grid.size == (left + 2 * SIZE + MARGIN, top + 2 * SIZE + MARGIN)
    for index, cell in enumerate(cells):
        x, y = left + (index % 2) * (SIZE + MARGIN), top + (index // 2) * (SIZE + MARGIN)
        assert np.array_equal(pixels(grid)[y : y + SIZE, x : x + SIZE], pixels(cell))
    # The infotexts follow the images: X (Steps) varies fastest, one seed for the whole plot.
    infotexts = result.info["infotexts"]
    assert len(infotexts) == 5
    assert "Script: X/Y/Z plot, X Type: Steps, X Values: 2-3, Y Type: CFG Scale" in infotexts[0]
    for infotext, (steps, cfg) in zip(infotexts[1:], [(2, 3), (3, 3), (2, 7), (3, 7)], strict=True):
        assert f"Steps: {steps}," in infotext and f"CFG scale: {cfg}," in infotext and "Seed: 1234," in infotext


def test_bad_script_args_are_refused_and_nothing_is_queued(a1111: DaemonThread) -> None:
    before = a1111_experiments(a1111)
    bad = release_args(x=(2, "1, 2"))  # 2 is "Var. seed": no variation seeds here
    with pytest.raises(RuntimeError) as caught:
        client(a1111).txt2img(prompt="a cat", width=SIZE, height=SIZE, script_name="x/y/z plot", script_args=bad)
    status, text = caught.value.args
    assert status == 422 and "script_args" in text and "Var. seed" in text
    assert a1111_experiments(a1111) == before
