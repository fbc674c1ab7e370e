"""The RPC methods against a real in-process daemon over a real WebSocket."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cauldron_client import Client, RpcError

from cauldrond.daemon import Daemon
from tests.conftest import FAST
from tests.waiting import finished

REQUIRED_METHODS = {
    "rpc.describe",
    "system.info",
    "models.list",
    "samplers.list",
    "generate",
    "experiments.create",
    "experiments.list",
    "experiments.get",
    "experiments.cancel",
    "experiments.set_priority",
    "queue.list",
    "queue.pause",
    "queue.resume",
    "images.list",
    "images.get",
    "events.subscribe",
}


async def test_describe_lists_every_method_with_schema_and_doc(client: Client) -> None:
    described = await client.call("rpc.describe")
    by_name = {m["name"]: m for m in described["methods"]}
    assert set(by_name) >= REQUIRED_METHODS
    for method in by_name.values():
        assert method["doc"], f"{method['name']} has no doc"
        assert method["params"]["type"] == "object"
    assert "prompt" in by_name["generate"]["params"]["properties"]


async def test_system_info_models_and_samplers(client: Client) -> None:
    info = await client.call("system.info")
    assert info["api_version"] == 1
    assert info["hardware"]["device"] == "cpu"
    models = (await client.call("models.list"))["models"]
    tiny = next(m for m in models if m["name"] == "tiny-sd")
    assert "random" in tiny["note"]
    samplers = {s["name"]: s for s in (await client.call("samplers.list"))["samplers"]}
    for name in ("Euler", "Euler a", "DPM++ 2M", "DPM++ 2M SDE", "UniPC", "LCM", "DDIM"):
        assert name in samplers
    assert "Karras" in samplers["DPM++ 2M"]["schedules"]


async def test_generate_runs_to_an_image_with_recorded_seed(client: Client, daemon: Daemon) -> None:
    created = await client.call("generate", **{**FAST, "seed": -1})
    experiment_id = created["experiment"]["id"]
    result = await finished(client, experiment_id)
    assert result["experiment"]["status"] == "done"
    images = (await client.call("images.list", experiment_id=experiment_id))["images"]
    assert len(images) == 1
    image = images[0]
    assert 0 <= image["seed"] < 2**32 and image["params"]["seed"] == image["seed"]
    got = (await client.call("images.get", image_id=image["id"]))["image"]
    png = await client.fetch_image(image["id"])
    assert png.startswith(b"\x89PNG") and len(png) == image["size_bytes"]
    # The recorded hash is the served file's, computed here with hashlib.
    assert got["sha256"] == image["sha256"] == hashlib.sha256(png).hexdigest()
    assert image["wall_time_s"] > 0


async def test_sweep_axes_make_the_cartesian_product(client: Client) -> None:
    created = await client.call(
        "experiments.create",
        name="axes",
        base=FAST,
        axes={"sampler": ["Euler", "DPM++ 2M Karras"], "seed": [1, 2, 3]},
    )
    experiment = created["experiment"]
    assert experiment["counts"]["total"] == 6
    result = await finished(client, experiment["id"])
    params = [job["params"] for job in result["jobs"]]
    assert [(p["sampler"], p["schedule"], p["seed"]) for p in params] == [
        ("Euler", "Automatic", 1),
        ("Euler", "Automatic", 2),
        ("Euler", "Automatic", 3),
        ("DPM++ 2M", "Karras", 1),
        ("DPM++ 2M", "Karras", 2),
        ("DPM++ 2M", "Karras", 3),
    ]
    assert result["experiment"]["counts"]["done"] == 6


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"base": FAST, "axes": {"sampler": ["Euler", "Nope"]}}, "Nope"),
        ({"base": {**FAST, "model": "missing-model"}}, "missing-model"),
        ({"base": FAST, "axes": {"steps": [2, 0]}}, "steps"),
        ({"base": FAST, "axes": {"width": [64, 65]}}, "multiple of 8"),
        ({"base": FAST, "axes": {"colour": ["red"]}}, "colour"),
        ({"base": FAST, "axes": {"seed": list(range(101)), "steps": list(range(1, 101))}}, "limit"),
        ({"base": {**FAST, "schedule": "Karras"}, "axes": {"sampler": ["DDIM"]}}, "Karras"),
    ],
)
async def test_a_bad_experiment_is_refused_whole(client: Client, params: dict[str, Any], needle: str) -> None:
    before = await client.call("experiments.list")
    with pytest.raises(RpcError) as caught:
        await client.call("experiments.create", **params)
    assert caught.value.code == "invalid_params"
    assert needle in caught.value.message
    assert await client.call("experiments.list") == before


async def test_not_found_ids(client: Client) -> None:
    for method, params in [
        ("experiments.get", {"experiment_id": 999}),
        ("experiments.cancel", {"experiment_id": 999}),
        ("experiments.set_priority", {"experiment_id": 999, "priority": 1}),
        ("images.get", {"image_id": 999}),
    ]:
        with pytest.raises(RpcError) as caught:
            await client.call(method, **params)
        assert caught.value.code == "not_found", method
