"""images.search over what post-processors annotated; exporters and importers that plugins register."""

from __future__ import annotations

import pytest
from cauldron_client.errors import RpcError

from tests.conftest import FAST
from tests.plugins.conftest import StartDaemon
from tests.plugins.sample_plugins import Tagger, TextFormat, source
from tests.waiting import finished


async def test_search_by_tag_and_by_words(start_daemon: StartDaemon) -> None:
    async with start_daemon([source("tagger", Tagger())]) as (daemon, client):
        base = {**FAST, "prompt": "a lighthouse at dusk"}
        prompts = ["a lighthouse at dusk", "a red Fox", "a red foxglove"]
        created = await client.call("experiments.create", name="s", base=base, axes={"prompt": prompts})
        experiment = await finished(client, created["experiment"]["id"])
        by_prompt = {job["params"]["prompt"]: job["image_id"] for job in experiment["jobs"]}
        assert daemon.services is not None and daemon.services.postprocess is not None
        assert await daemon.services.postprocess.wait_idle(30)

        async def ids(**query: object) -> list[int]:
            return [image["id"] for image in (await client.call("images.search", **query))["images"]]

        # tags are the prompt's last two words: "at, dusk", "red, Fox", "red, foxglove"
        assert await ids(tag="fox") == [by_prompt["a red Fox"]]  # whole tags only, any case
        assert await ids(tag="RED") == sorted([by_prompt["a red Fox"], by_prompt["a red foxglove"]])
        assert await ids(query="FOX") == sorted([by_prompt["a red Fox"], by_prompt["a red foxglove"]])
        assert await ids(query="picture lighthouse") == [by_prompt["a lighthouse at dusk"]]
        assert await ids(query="red", tag="foxglove") == [by_prompt["a red foxglove"]]
        assert await ids(query="100%_") == []
        first_page = await ids(tag="red", limit=1)
        assert first_page == [min(by_prompt["a red Fox"], by_prompt["a red foxglove"])]
        assert await ids(tag="red", limit=1, after_id=first_page[0]) == [
            max(by_prompt["a red Fox"], by_prompt["a red foxglove"])
        ]
        found = (await client.call("images.search", tag="dusk"))["images"][0]
        assert found["url"] == f"/images/{found['id']}.png" and found["params"]["prompt"] == "a lighthouse at dusk"
        with pytest.raises(RpcError) as caught:
            await client.call("images.search", query="   ")
        assert caught.value.code == "invalid_params"


async def test_exporters_and_importers_over_rpc(start_daemon: StartDaemon) -> None:
    async with start_daemon([source("pipe", TextFormat())]) as (_, client):
        assert (await client.call("exports.formats"))["formats"] == [
            {"name": "pipe", "plugin": "pipe", "description": "prompt|seed|steps lines", "experiments": False}
        ]
        assert [f["name"] for f in (await client.call("imports.formats"))["formats"]] == ["pipe"]

        content = b"a lighthouse|11|2\nunexportable boat|12|2\n"
        dry = await client.call("imports.run", content=content, filename="cells.txt")
        assert dry["format"] == "pipe" and "experiment" not in dry
        assert [(p["prompt"], p["seed"]) for p in dry["params"]] == [("a lighthouse", 11), ("unexportable boat", 12)]

        queued = await client.call("imports.run", content=content, filename="cells.txt", queue=True, priority=5)
        assert queued["experiment"]["kind"] == "import" and len(queued["job_ids"]) == 2
        experiment = await finished(client, queued["experiment"]["id"])
        images = sorted((job["params"]["seed"], job["image_id"]) for job in experiment["jobs"])

        one = await client.call("exports.run", format="pipe", image_id=images[0][1])
        assert (one["format"], one["skipped"]) == ("pipe", [])
        assert one["files"] == [
            {"filename": f"image-{images[0][1]}.txt", "media_type": "text/plain", "content": b"a lighthouse|11|2\n"}
        ]
        # An experiment: the image the exporter refuses is listed with its ValueError, the other is still written.
        whole = await client.call("exports.run", format="pipe", experiment_id=experiment["experiment"]["id"])
        assert [f["content"] for f in whole["files"]] == [b"a lighthouse|11|2\n"]
        assert whole["skipped"] == [{"image_id": images[1][1], "reason": "this prompt cannot be exported"}]
        with pytest.raises(RpcError) as caught:  # one image: the exporter's ValueError reaches the client as raised
            await client.call("exports.run", format="pipe", image_id=images[1][1])
        assert caught.value.code == "invalid_params" and "cannot be exported" in caught.value.message
        with pytest.raises(RpcError) as caught:
            await client.call("exports.run", format="nonesuch", image_id=images[0][1])
        assert caught.value.code == "invalid_params" and "installed: pipe" in caught.value.message
        with pytest.raises(RpcError) as caught:
            await client.call("imports.run", content=b"", filename="empty.txt")
        assert caught.value.code == "invalid_params" and "pipe: no lines" in caught.value.message
        with pytest.raises(RpcError) as caught:
            await client.call("imports.run", content=b"x|1|9999\n", filename="bad.txt")
        assert caught.value.code == "invalid_params" and "steps" in caught.value.message
