"""The gallery's RPC against a real daemon: images.list newest first with filters and next_after_id pages,
favourite and rating marks announced after their commit, and the prompt history of every kind of experiment."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from cauldron_client import Client, RpcError

from cauldrond.daemon import Daemon
from tests.conftest import FAST
from tests.waiting import finished


def marks(daemon: Daemon) -> list[tuple[int, int, int | None]]:
    with sqlite3.connect(daemon.settings.database_path) as db:
        return db.execute("SELECT id, favorite, rating FROM images ORDER BY id").fetchall()


async def test_gallery_pages_filters_marks_and_prompt_history(daemon: Daemon, client: Client) -> None:
    sweep = await client.call(
        "experiments.create",
        base=FAST,
        axes={"sampler": ["Euler", "DPM++ 2M"], "cfg_scale": [3, 7]},
    )
    other = await client.call("generate", **{**FAST, "prompt": "a harbour in fog", "negative_prompt": "people"})
    sweep_id, other_id = sweep["experiment"]["id"], other["experiment"]["id"]
    await finished(client, sweep_id)
    await finished(client, other_id)
    ids = sorted(i["id"] for i in (await client.call("images.list", limit=100))["images"])
    assert len(ids) == 5

    # Newest first, three to a page, each page picking up after the last id of the one before.
    first = await client.call("images.list", order="newest", limit=3)
    assert [i["id"] for i in first["images"]] == ids[::-1][:3] and first["next_after_id"] == ids[2]
    second = await client.call("images.list", order="newest", limit=3, after_id=first["next_after_id"])
    assert [i["id"] for i in second["images"]] == ids[1::-1] and second["next_after_id"] is None
    tile = first["images"][0]
    assert tile["url"] == f"/images/{tile['id']}.png" and tile["thumb_url"] == f"/thumbs/256/{tile['id']}.webp"
    assert tile["favorite"] is False and tile["rating"] is None and tile["experiment_id"] == other_id
    assert tile["caption"] == {
        "model": "tiny-sd",
        "sampler": "Euler",
        "steps": 2,
        "cfg": 7.0,
        "width": 64,
        "height": 64,
        "prompt": "a harbour in fog",
    }

    async def listed(**filters: Any) -> list[int]:
        return [i["id"] for i in (await client.call("images.list", order="newest", **filters))["images"]]

    by_sampler = {
        i["id"]: i["params"]["sampler"] for i in (await client.call("images.list", experiment_id=sweep_id))["images"]
    }
    assert await listed(experiment_id=sweep_id) == sorted(by_sampler, reverse=True)
    assert await listed(sampler="DPM++ 2M") == sorted(
        (i for i, s in by_sampler.items() if s == "DPM++ 2M"), reverse=True
    )
    assert await listed(sampler="DPM++ 2M Karras") == []
    assert await listed(model="tiny-sd") == ids[::-1]
    assert await listed(model="no-such-model") == []
    assert await listed(text="anything") == []  # no tagger plugin ran: no annotations to match

    async with client.events(["image.updated"]) as stream:
        favourite = await client.call("images.favorite", image_id=ids[0], favorite=True)
        rated = await client.call("images.rate", image_id=ids[1], rating=4)
        events = [await stream.next(30), await stream.next(30)]
    assert favourite["image"]["favorite"] is True and rated["image"]["rating"] == 4
    assert [(e["image_id"], e["favorite"], e["rating"]) for e in events if e] == [
        (ids[0], True, None),
        (ids[1], False, 4),
    ]
    assert marks(daemon)[:2] == [(ids[0], 1, None), (ids[1], 0, 4)]
    assert await listed(favorite=True) == [ids[0]]
    assert await listed(min_rating=4) == [ids[1]]
    assert await listed(min_rating=5) == []

    before = marks(daemon)
    for method, params, code in (
        ("images.rate", {"image_id": ids[1], "rating": 6}, "invalid_params"),
        ("images.rate", {"image_id": ids[1], "rating": 0}, "invalid_params"),
        ("images.rate", {"image_id": ids[1]}, "invalid_params"),
        ("images.rate", {"image_id": 987654, "rating": 3}, "not_found"),
        ("images.favorite", {"image_id": 987654, "favorite": True}, "not_found"),
        ("images.favorite", {"image_id": ids[0], "favorite": "yes"}, "invalid_params"),
        ("images.list", {"order": "newest", "min_rating": 9}, "invalid_params"),
        ("images.list", {"order": "sideways"}, "invalid_params"),
    ):
        with pytest.raises(RpcError) as caught:
            await client.call(method, **params)
        assert caught.value.code == code, (method, params, caught.value)
    assert marks(daemon) == before
    await client.call("images.rate", image_id=ids[1], rating=None)
    assert marks(daemon)[1] == (ids[1], 0, None)

    history = (await client.call("prompts.history"))["prompts"]
    assert [(p["prompt"], p["negative_prompt"], p["uses"]) for p in history] == [
        ("a harbour in fog", "people", 1),
        (FAST["prompt"], "", 1),
    ]
    found = (await client.call("prompts.history", query="HARBOUR fog"))["prompts"]
    assert [p["prompt"] for p in found] == ["a harbour in fog"]
    assert (await client.call("prompts.history", query="harbour lighthouse"))["prompts"] == []
