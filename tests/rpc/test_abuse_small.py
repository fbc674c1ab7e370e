"""Abuse item 8 (issue 9), the smaller findings: a private data directory whichever command made it, ids past
SQLite's range, model names that are URLs or paths, hostile values echoed in errors, unknown event types,
cancelling a finished experiment, and what a paired device may see of the daemon's paths."""

from __future__ import annotations

import asyncio
import re
import stat
from pathlib import Path
from typing import Any

import msgpack
import pytest
from cauldron_client import Client, RpcError
from click.testing import CliRunner

from cauldrond.cli import main as cauldrond_cli
from cauldrond.daemon import Daemon
from cauldrond.rpc.methods.events import EVENT_TYPES
from cauldrond.web.auth import hash_token, new_device_token
from tests.conftest import FAST, make_settings, url_of
from tests.rpc.abuse import assert_alive, raw_connect, replies, request
from tests.waiting import finished

TOO_BIG = 2**63  # one past SQLite's largest integer


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_data_dir_is_private_when_create_tiny_made_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = await asyncio.to_thread(
        CliRunner().invoke, cauldrond_cli, ["--data-dir", str(data_dir), "models", "create-tiny"]
    )
    assert result.exit_code == 0, result.output
    assert mode(data_dir) == 0o700
    data_dir.chmod(0o755)  # as an older version (or a careless copy) left it
    daemon = Daemon(make_settings(data_dir, data_dir / "models"))
    await daemon.start()
    try:
        assert mode(data_dir) == 0o700
        database = daemon.settings.database_path
        for path in (database, database.with_name(database.name + "-wal")):
            assert mode(path) == 0o600, path
    finally:
        await daemon.stop()


def id_fields(schema: dict[str, Any]) -> list[tuple[str, Any]]:
    """(field, a value past SQLite's range) for every id, id list and offset a method's schema has."""
    found = []
    for name, prop in (schema.get("properties") or {}).items():
        kinds = {option.get("type") for option in prop.get("anyOf", [prop])}
        if "integer" in kinds and (name.endswith("_id") or name.endswith("offset")):
            found.append((name, TOO_BIG))
        elif "array" in kinds and name.endswith("_ids"):
            found.append((name, [TOO_BIG]))
    return found


async def test_ids_past_sqlites_range_are_invalid_params_in_every_method(daemon: Daemon, client: Client) -> None:
    methods = (await client.call("rpc.describe"))["methods"]
    checked = 0
    for method in methods:
        for field, value in id_fields(method["params"]):
            with pytest.raises(RpcError) as caught:
                await client.call(method["name"], **{field: value})
            assert caught.value.code == "invalid_params", (method["name"], field, caught.value.message)
            checked += 1
    assert checked >= 17  # the probe found 17 methods answering internal_error
    await assert_alive(daemon)


@pytest.mark.parametrize(
    "model", ["http://evil.example/model", "file:///etc/passwd", "../../etc/passwd", "a/../../b", "/abs/model", "a/b/c"]
)
async def test_model_names_that_are_urls_or_paths_are_refused_at_creation(
    daemon: Daemon, client: Client, model: str
) -> None:
    before = await client.call("experiments.list")
    with pytest.raises(RpcError) as caught:
        await client.call("experiments.create", name="x", base={**FAST, "model": model})
    assert caught.value.code == "invalid_params" and "model" in caught.value.message
    assert await client.call("experiments.list") == before  # nothing was created


@pytest.mark.parametrize(
    "params",
    [
        {"base": {**FAST, "sampler": "s" * 60_000}},
        {"base": {**FAST, "model": "m" * 60_000}},
        {"base": FAST, "axes": {"steps": "9" * 60_000 + "x"}},
        {"base": FAST, "axes": {"no_such_axis_" + "a" * 60_000: [1]}},
    ],
)
async def test_a_64_kib_bad_value_is_not_echoed_whole(daemon: Daemon, params: dict[str, Any]) -> None:
    async with raw_connect(daemon) as ws:
        await ws.send(request(1, "experiments.create", name="x", **params))
        ((_, msgid, error, _),) = await replies(ws, 1)
        frame = msgpack.packb(error)
    assert msgid == 1 and error["code"] == "invalid_params"
    assert len(frame) < 8 * 1024  # the error names the problem; it does not carry the 60 KB value back


async def test_unknown_event_types_are_refused_with_the_known_ones(daemon: Daemon, client: Client) -> None:
    with pytest.raises(RpcError) as caught:
        await client.call("events.subscribe", types=["job.done", "job.finished"])
    assert caught.value.code == "invalid_params"
    assert "job.finished" in caught.value.message and "job.done" in caught.value.message  # names the known ones
    assert (await client.call("events.subscribe", types=["job.done"]))["subscribed"] == ["job.done"]


def test_every_published_event_type_is_known() -> None:
    package = Path(__file__).resolve().parents[2] / "cauldrond"
    published = set()
    for source in package.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        published |= set(re.findall(r"publish(?:_retained)?\(\s*\"([a-z_.]+)\"", text))
    assert published, "no publish calls found: the pattern is out of date"
    assert published <= EVENT_TYPES, f"add to rpc/methods/events.py EVENT_TYPES: {sorted(published - EVENT_TYPES)}"


async def test_cancelling_a_finished_experiment_leaves_it_as_it_is(daemon: Daemon, client: Client) -> None:
    created = await client.call("generate", **FAST)
    experiment_id = created["experiment"]["id"]
    await finished(client, experiment_id)
    before = await client.call("experiments.get", experiment_id=experiment_id)
    assert before["experiment"]["status"] == "done"
    with pytest.raises(RpcError) as caught:
        await client.call("experiments.cancel", experiment_id=experiment_id)
    assert caught.value.code == "invalid_state" and "already finished" in caught.value.message
    after = await client.call("experiments.get", experiment_id=experiment_id)
    assert after == before


async def test_a_paired_device_sees_no_absolute_paths(daemon: Daemon, client: Client) -> None:
    token = new_device_token()
    await daemon.services.store.tokens.add("phone", hash_token(token))  # type: ignore[union-attr]
    created = await client.call("generate", **FAST)
    await finished(client, created["experiment"]["id"])
    image_id = (await client.call("images.list"))["images"][0]["id"]
    secrets = [str(daemon.settings.data_dir), str(daemon.settings.resolved_models_dir)]

    async def everything(caller: Client) -> str:
        answers = [
            await caller.call("system.info"),
            await caller.call("models.list"),
            await caller.call("images.get", image_id=image_id),
            await caller.call("images.list"),
        ]
        return repr(answers)

    local = await everything(client)
    assert all(secret in local for secret in secrets)  # the owner's CLI still gets real paths
    async with Client(url_of(daemon), token) as phone:
        seen = await everything(phone)
        image = (await phone.call("images.get", image_id=image_id))["image"]
    assert not any(secret in seen for secret in secrets)
    assert image["file"].startswith("<data_dir>/images/") and image["url"] == f"/images/{image_id}.png"
