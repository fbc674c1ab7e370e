"""Issue 3 through the real daemon: experiment kinds, value syntax, plan, grids, export, analysis, rerun."""

from __future__ import annotations

import asyncio
import csv
import io
import urllib.request
from io import BytesIO
from typing import Any

import numpy as np
import pytest
from cauldron_client import Client, RpcError
from PIL import Image

from cauldrond.daemon import Daemon
from tests.conftest import FAST, token_of, url_of
from tests.waiting import finished


def fetch(daemon: Daemon, path: str) -> bytes:
    request = urllib.request.Request(url_of(daemon) + path, headers={"Authorization": f"Bearer {token_of(daemon)}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body: bytes = response.read()
        return body


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(BytesIO(png)).convert("RGB"), dtype=np.int16)


@pytest.fixture
async def convergence(client: Client) -> dict[str, Any]:
    created = await client.call(
        "experiments.convergence",
        name="conv",
        base={"width": 64, "height": 64},
        prompts=["a lighthouse at dusk"],
        models=["tiny-sd"],
        samplers=["Euler", "DDIM"],
        steps="2-6 [3]",
        seeds=[1, 2],
    )
    experiment = created["experiment"]
    assert experiment["kind"] == "convergence" and experiment["counts"]["total"] == 12
    # Seconds on a quiet machine; the bound is for a 2-core one running the rest of the suite beside it.
    result: dict[str, Any] = await finished(client, experiment["id"], timeout=400)
    return result


async def test_convergence_analysis_plot_and_timing(
    client: Client, daemon: Daemon, convergence: dict[str, Any]
) -> None:
    experiment_id = convergence["experiment"]["id"]
    assert sorted({job["params"]["steps"] for job in convergence["jobs"]}) == [2, 4, 6]
    analysis = await client.call("experiments.analyze", experiment_id=experiment_id)
    series = analysis["convergence"]["series"]
    assert len(series) == 4  # 2 samplers x 2 seeds, each varying only in steps
    assert {s["key"]["sampler"] for s in analysis["convergence"]["by_sampler"]} == {"Euler", "DDIM"}
    assert {group["key"]["sampler"] for group in analysis["timing"]["by_sampler"]} == {"Euler", "DDIM"}
    plot = await asyncio.to_thread(fetch, daemon, analysis["plot"]["url"])
    assert plot.startswith(b"\x89PNG")
    ssim = await client.call("experiments.analyze", experiment_id=experiment_id, metric="ssim", plot=False)
    assert ssim["plot"] is None and ssim["convergence"]["metric"] == "ssim"


async def test_grids_by_axes(client: Client, daemon: Daemon, convergence: dict[str, Any]) -> None:
    experiment_id = convergence["experiment"]["id"]
    split = await client.call("experiments.grid", experiment_id=experiment_id, x="sampler", y="steps")
    assert len(split["grids"]) == 2  # the seed axis is not on the grid and not fixed: one grid per seed
    one = await client.call("experiments.grid", experiment_id=experiment_id, x="sampler", y="steps", fixed={"seed": 1})
    assert len(one["grids"]) == 1 and one["grids"][0]["fixed"]["seed"] == 1
    grid = pixels(await asyncio.to_thread(fetch, daemon, one["grids"][0]["url"]))
    height, width, _ = grid.shape
    assert width > 2 * 64 and height > 3 * 64  # 2 columns x 3 rows plus label bands
    # The grid holds the real images: the Euler/2-step image is in it, pixel for pixel.
    euler2 = next(
        job
        for job in convergence["jobs"]
        if job["params"]["sampler"] == "Euler" and job["params"]["steps"] == 2 and job["params"]["seed"] == 1
    )
    cell = pixels(await client.fetch_image(euler2["image_id"]))
    found = any(
        np.array_equal(grid[y : y + 64, x : x + 64], cell) for y in range(height - 63) for x in range(0, width - 63)
    )
    assert found
    z = await client.call("experiments.grid", experiment_id=experiment_id, x="steps", z="sampler", fixed={"seed": 2})
    assert len(z["grids"]) == 2


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"x": "colour"}, "no axis 'colour'"),
        ({"x": "sampler", "y": "sampler"}, "different axes"),
        ({"x": "sampler", "fixed": {"seed": 99}}, "no value 99"),
        ({"x": "sampler", "y": "steps", "max_pixels": 10_000}, "megapixels"),
    ],
)
async def test_bad_grid_requests(
    client: Client, convergence: dict[str, Any], params: dict[str, Any], needle: str
) -> None:
    with pytest.raises(RpcError) as caught:
        await client.call("experiments.grid", experiment_id=convergence["experiment"]["id"], **params)
    assert caught.value.code == "invalid_params" and needle in caught.value.message


async def test_export_csv_and_json(client: Client, convergence: dict[str, Any]) -> None:
    experiment_id = convergence["experiment"]["id"]
    exported = await client.call("experiments.export", experiment_id=experiment_id, format="csv")
    rows = list(csv.DictReader(io.StringIO(exported["content"])))
    assert exported["rows"] == len(rows) == 12
    assert {"sampler", "steps", "seed", "image_id", "wall_time_s", "distance_mad"} <= set(rows[0])
    as_json = await client.call("experiments.export", experiment_id=experiment_id, format="json")
    assert '"sampler"' in as_json["content"]


async def test_cfg_sweep_from_an_image_keeps_everything_but_cfg(client: Client) -> None:
    source = await client.call("generate", **{**FAST, "seed": -1})
    await finished(client, source["experiment"]["id"])
    image = (await client.call("images.list", experiment_id=source["experiment"]["id"]))["images"][0]
    created = await client.call("experiments.cfg", image_id=image["id"], cfg="3-9 [3]")
    result = await finished(client, created["experiment"]["id"])
    params = [job["params"] for job in result["jobs"]]
    assert [p["cfg_scale"] for p in params] == [3.0, 6.0, 9.0]
    assert {p["seed"] for p in params} == {image["seed"]}
    assert all(
        {k: v for k, v in p.items() if k != "cfg_scale"}
        == {k: v for k, v in image["params"].items() if k != "cfg_scale"}
        for p in params
    )


async def test_rerun_is_pixel_identical(client: Client) -> None:
    source = await client.call("generate", **{**FAST, "sampler": "Euler a", "seed": -1})
    await finished(client, source["experiment"]["id"])
    image = (await client.call("images.list", experiment_id=source["experiment"]["id"]))["images"][0]
    rerun = await client.call("images.rerun", image_id=image["id"])
    await finished(client, rerun["experiment"]["id"])
    repeat = (await client.call("images.list", experiment_id=rerun["experiment"]["id"]))["images"][0]
    assert repeat["params"] == image["params"]
    assert np.array_equal(pixels(await client.fetch_image(repeat["id"])), pixels(await client.fetch_image(image["id"])))
    for key in ("model_hash", "scheduler_config", "device", "dtype", "torch", "diffusers"):
        assert key in image["metadata"], key


async def test_plan_counts_loads_batches_and_estimates(client: Client) -> None:
    spec = {"base": {**FAST, "steps": 3}, "axes": {"seed": "1-4", "cfg_scale": [5, 7.5], "sampler": "Euler, DDIM"}}
    before = await client.call("experiments.list")
    plan = await client.call("experiments.plan", **spec)
    assert plan["cells"] == 16 and plan["model_loads"] <= 1
    assert plan["batches"] == 4  # 2 samplers x ceil(8 / max batch 4)
    assert [axis["values"] for axis in plan["axes"]] == [[1, 2, 3, 4], [5.0, 7.5], ["Euler", "DDIM"]]
    assert await client.call("experiments.list") == before  # a dry run stores nothing
    created = await client.call("experiments.create", **spec)
    done = await finished(client, created["experiment"]["id"])
    assert done["experiment"]["counts"]["done"] == 16
    again = await client.call("experiments.plan", **spec)
    assert again["estimated_seconds"] is not None and again["estimated_seconds"] > 0


async def test_prompt_search_replace_axis(client: Client) -> None:
    created = await client.call(
        "experiments.create",
        base={**FAST, "prompt": "a red fox in snow", "negative_prompt": "blurry fox"},
        axes={"prompt_sr": "fox, cat, owl"},
    )
    result = await finished(client, created["experiment"]["id"])
    prompts = [(j["params"]["prompt"], j["params"]["negative_prompt"]) for j in result["jobs"]]
    assert prompts == [
        ("a red fox in snow", "blurry fox"),
        ("a red cat in snow", "blurry cat"),
        ("a red owl in snow", "blurry owl"),
    ]


@pytest.mark.parametrize(
    ("axes", "needle"),
    [
        ({"steps": "10-"}, "'steps'"),
        ({"size": "512x500"}, "'size'"),
        ({"cfg_scale": "3-12 (+0)"}, "'cfg_scale'"),
        ({"seed": "1-20000", "steps": "1-10"}, "limit"),
        ({"prompt_sr": "zebra, horse"}, "zebra"),
    ],
)
async def test_bad_values_are_refused_before_anything_is_queued(
    client: Client, axes: dict[str, Any], needle: str
) -> None:
    before = (await client.call("queue.list"), await client.call("experiments.list"))
    with pytest.raises(RpcError) as caught:
        await client.call("experiments.create", base=FAST, axes=axes)
    assert caught.value.code == "invalid_params" and needle in caught.value.message
    assert (await client.call("queue.list"), await client.call("experiments.list")) == before
