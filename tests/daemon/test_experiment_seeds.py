"""Through the real daemon: one seed per experiment unless vary_seed, and analyses that keep a sampler's schedules
apart under A1111's names."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from cauldron_client import Client, RpcError

from tests.conftest import FAST
from tests.waiting import finished

FOX = {**FAST, "prompt": "a red fox in snow"}


def seeds(result: dict[str, Any]) -> list[int]:
    return [job["params"]["seed"] for job in result["jobs"]]


async def test_the_issues_sweep_without_a_seed_shares_one_seed(client: Client) -> None:
    created = await client.call("experiments.create", base=FOX, axes={"prompt_sr": "fox,cat,owl", "steps": [2, 3]})
    result = await finished(client, created["experiment"]["id"])
    spec = result["experiment"]["spec"]
    assert spec["vary_seed"] is False and 0 <= spec["seed"] < 2**32
    assert seeds(result) == [spec["seed"]] * 6
    images = (await client.call("images.list", experiment_id=created["experiment"]["id"]))["images"]
    assert len(images) == 6 and {image["seed"] for image in images} == {spec["seed"]}


async def test_vary_seed_gives_each_cell_its_own(client: Client) -> None:
    created = await client.call(
        "experiments.create", base={**FOX, "seed": -1}, axes={"prompt_sr": "fox,cat,owl"}, vary_seed=True
    )
    result = await client.call("experiments.get", experiment_id=created["experiment"]["id"])
    assert result["experiment"]["spec"]["vary_seed"] is True and result["experiment"]["spec"]["seed"] == -1
    assert len(set(seeds(result))) == 3


async def test_each_minus_one_of_a_seed_axis_is_one_seed_along_the_other_axes(client: Client) -> None:
    created = await client.call("experiments.create", base=FOX, axes={"seed": "-1, 5, -1", "steps": [2, 3]})
    result = await client.call("experiments.get", experiment_id=created["experiment"]["id"])
    (seed_axis, _) = result["experiment"]["spec"]["resolved_axes"]
    first, given, last = seed_axis["values"]
    assert given == 5 and len({first, given, last}) == 3 and -1 not in seed_axis["values"]
    assert seeds(result) == [first, first, 5, 5, last, last]
    assert result["experiment"]["spec"]["axes"] == {"seed": "-1, 5, -1", "steps": [2, 3]}, "as given, too"
    assert result["experiment"]["spec"]["seed"] == -1  # no experiment-wide seed: the axis gives every cell one


async def test_convergence_shares_its_seed_unless_asked(client: Client) -> None:
    arguments: dict[str, Any] = {
        "base": {"width": 64, "height": 64},
        "prompts": ["a red fox in snow", "an owl"],
        "models": ["tiny-sd"],
        "samplers": ["Euler"],
        "steps": [2, 3],
    }
    shared = await client.call("experiments.convergence", **arguments)
    one = await client.call("experiments.get", experiment_id=shared["experiment"]["id"])
    assert seeds(one) == [one["experiment"]["spec"]["seed"]] * 4
    varied = await client.call("experiments.convergence", **arguments, vary_seed=True)
    per_cell = await client.call("experiments.get", experiment_id=varied["experiment"]["id"])
    assert len(set(seeds(per_cell))) == 4
    plan = await client.call("experiments.plan", base=FOX, axes={"steps": [2, 3]}, vary_seed=True)
    assert plan["cells"] == 2


async def test_a_bad_vary_seed_is_refused_and_nothing_is_stored(client: Client) -> None:
    before = (await client.call("queue.list"), await client.call("experiments.list"))
    with pytest.raises(RpcError) as caught:
        await client.call("experiments.create", base=FOX, axes={"steps": [2, 3]}, vary_seed="yes")
    assert caught.value.code == "invalid_params" and "vary_seed" in caught.value.message
    assert (await client.call("queue.list"), await client.call("experiments.list")) == before


async def test_dpmpp_2m_and_its_karras_schedule_are_analysed_apart(client: Client) -> None:
    # The issue: --sampler "DPM++ 2M" --sampler "DPM++ 2M Karras" gave one row "DPM++ 2M" and a merged plot line.
    created = await client.call(
        "experiments.convergence",
        base={"width": 64, "height": 64},
        prompts=["a lighthouse at dusk"],
        models=["tiny-sd"],
        samplers=["DPM++ 2M", "DPM++ 2M Karras"],
        steps=[2, 4],
        seeds=[7],
    )
    experiment_id = created["experiment"]["id"]
    result = await finished(client, experiment_id)
    assert {(j["params"]["sampler"], j["params"]["schedule"]) for j in result["jobs"]} == {
        ("DPM++ 2M", "Automatic"),
        ("DPM++ 2M", "Karras"),
    }
    analysis = await client.call("experiments.analyze", experiment_id=experiment_id)
    # Both names as A1111's sampler list spells them.
    rows = {group["label"]: group["series"] for group in analysis["convergence"]["by_sampler"]}
    assert rows == {"DPM++ 2M": 1, "DPM++ 2M Karras": 1}
    timing = {group["label"]: group["count"] for group in analysis["timing"]["by_sampler"]}
    assert timing == {"DPM++ 2M": 2, "DPM++ 2M Karras": 2}
    exported = await client.call("experiments.export", experiment_id=experiment_id, format="csv")
    names = [row["a1111_sampler"] for row in csv.DictReader(io.StringIO(exported["content"]))]
    assert sorted(names) == ["DPM++ 2M", "DPM++ 2M", "DPM++ 2M Karras", "DPM++ 2M Karras"]
