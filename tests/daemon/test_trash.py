"""images.delete / images.restore / trash.empty against a real daemon and a restart: the file goes to the trash
folder and back byte for byte (hashlib over the bytes against the recorded sha256), a restart in between
re-queues nothing, emptying needs confirm and the local token, and every refused call changes nothing."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client, RpcError

from cauldrond.daemon import Daemon
from cauldrond.web.auth import hash_token
from tests.conftest import FAST, make_settings, token_of, url_of
from tests.waiting import finished


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def database_rows(daemon: Daemon) -> list[tuple[Any, ...]]:
    with sqlite3.connect(daemon.settings.database_path) as db:
        return db.execute("SELECT id, path, sha256, favorite, rating, deleted_at FROM images ORDER BY id").fetchall()


def files_under(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256_of(p) for p in sorted(folder.rglob("*.png"))}


async def refused(client: Client, method: str, code: str, **params: Any) -> str:
    with pytest.raises(RpcError) as caught:
        await client.call(method, **params)
    assert caught.value.code == code, caught.value
    return caught.value.message


async def test_delete_survives_a_restart_restores_byte_for_byte_and_empties_for_good(
    tmp_path: Path, models_dir: Path
) -> None:
    settings = make_settings(tmp_path / "data", models_dir)
    images_dir, trash_dir = settings.images_dir, settings.data_dir / "trash" / "images"
    first = Daemon(settings)
    await first.start()
    try:
        async with Client(url_of(first), token_of(first)) as client:
            created = await client.call("experiments.create", base=FAST, axes={"cfg_scale": [3, 5, 7]})
            experiment_id = created["experiment"]["id"]
            await finished(client, experiment_id)
            images = (await client.call("images.list", experiment_id=experiment_id))["images"]
            victim = images[1]
            whole_grid = (await client.call("experiments.grid", experiment_id=experiment_id, x="cfg_scale"))["grids"]
            async with client.events(["image.deleted"]) as stream:
                reply = await client.call("images.delete", image_ids=[victim["id"]])
                event = await stream.next(30)
            assert reply["image_ids"] == [victim["id"]] and reply["deleted_at"]
            assert event is not None and event["image_ids"] == [victim["id"]]
            # Announced after the commit: the row is marked by the time anyone hears of it.
            assert [row[5] is not None for row in database_rows(first)] == [False, True, False]
    finally:
        await first.stop()

    assert not (images_dir / victim["path"]).exists()
    assert sha256_of(trash_dir / victim["path"]) == victim["sha256"]

    second = Daemon(settings)
    await second.start()
    try:
        async with Client(url_of(second), token_of(second)) as client:
            recovery = (await client.call("system.info"))["recovery"]
            assert recovery["requeued"] == recovery["missing_files"] == recovery["altered_files"] == []
            counts = (await client.call("experiments.get", experiment_id=experiment_id))["experiment"]["counts"]
            assert counts["done"] == 3 and counts["queued"] == 0
            listed = [i["id"] for i in (await client.call("images.list", experiment_id=experiment_id))["images"]]
            assert listed == [images[0]["id"], images[2]["id"]]
            assert (await client.call("experiments.export", experiment_id=experiment_id))["rows"] == 2
            # The grid is drawn again with a gap where the trashed image was (grids are named by what they hold).
            gap_grid = (await client.call("experiments.grid", experiment_id=experiment_id, x="cfg_scale"))["grids"]
            assert [g["url"] for g in gap_grid] != [g["url"] for g in whole_grid]
            assert [(g["width"], g["height"]) for g in gap_grid] == [(g["width"], g["height"]) for g in whole_grid]
            trash = await client.call("trash.list")
            assert [i["id"] for i in trash["images"]] == [victim["id"]] and trash["next_after_id"] is None
            assert trash["images"][0]["deleted_at"] == reply["deleted_at"]
            # Still served while in the trash, so an undo can show it.
            assert hashlib.sha256(await client.fetch_image(victim["id"])).hexdigest() == victim["sha256"]
            verify = await client.call("images.verify")
            assert verify["ok"] == verify["checked"] == 3

            await _bad_input_changes_nothing(second, client, victim, images)

            async with client.events(["image.restored"]) as stream:
                restored = await client.call("images.restore", image_ids=[victim["id"]])
                event = await stream.next(30)
            assert event is not None and event["image_ids"] == [victim["id"]]
            assert restored["images"][0]["deleted_at"] is None
            assert sha256_of(images_dir / victim["path"]) == victim["sha256"]
            assert not (trash_dir / victim["path"]).exists()
            assert len((await client.call("images.list", experiment_id=experiment_id))["images"]) == 3
            again = (await client.call("experiments.grid", experiment_id=experiment_id, x="cfg_scale"))["grids"]
            assert [g["url"] for g in again] == [g["url"] for g in whole_grid]

            # A trashed file damaged in the trash: verify names it; with requeue the image is forgotten, its
            # damaged file removed, and its job, which the user's delete finished with, is not generated again.
            await client.call("images.delete", image_ids=[images[0]["id"]])
            damaged = trash_dir / images[0]["path"]
            data = bytearray(damaged.read_bytes())
            data[-20] ^= 0xFF
            damaged.write_bytes(bytes(data))
            found = await client.call("images.verify")
            assert [a["image_id"] for a in found["altered"]] == [images[0]["id"]] and found["missing"] == []
            repaired = await client.call("images.verify", requeue=True)
            assert repaired["requeued"] == [] and not damaged.exists()
            await refused(client, "images.get", "not_found", image_id=images[0]["id"])
            counts = (await client.call("experiments.get", experiment_id=experiment_id))["experiment"]["counts"]
            assert counts["done"] == 3 and counts["queued"] == 0

            await client.call("images.delete", image_ids=[victim["id"]])
            emptied = await client.call("trash.empty", confirm=True)
            assert emptied == {"deleted": 1, "image_ids": [victim["id"]]}
            await refused(client, "images.get", "not_found", image_id=victim["id"])
            assert files_under(trash_dir) == {}
            assert list(files_under(images_dir)) == [images[2]["path"]]
            assert (await client.call("trash.list"))["images"] == []
    finally:
        await second.stop()


async def _bad_input_changes_nothing(
    daemon: Daemon, client: Client, victim: dict[str, Any], images: list[dict[str, Any]]
) -> None:
    images_dir, trash_dir = daemon.settings.images_dir, daemon.settings.data_dir / "trash" / "images"
    before = (database_rows(daemon), files_under(images_dir), files_under(trash_dir))

    message = await refused(client, "images.delete", "not_found", image_ids=[images[0]["id"], 987654])
    assert "987654" in message
    message = await refused(client, "images.delete", "invalid_params", image_ids=[images[2]["id"], victim["id"]])
    assert "already in the trash" in message
    message = await refused(client, "images.restore", "invalid_params", image_ids=[images[0]["id"]])
    assert "not in the trash" in message
    await refused(client, "images.restore", "not_found", image_ids=[987654])
    await refused(client, "images.delete", "invalid_params", image_ids=[])
    await refused(client, "images.delete", "invalid_params", image_ids=list(range(1, 502)))
    await refused(client, "trash.empty", "invalid_params")
    message = await refused(client, "trash.empty", "invalid_params", confirm=False)
    assert "confirm" in message

    device_token = "a-paired-phone-token-for-this-test"
    await daemon.services.store.tokens.add("phone", hash_token(device_token))
    async with Client(url_of(daemon), device_token) as phone:
        message = await refused(phone, "trash.empty", "forbidden", confirm=True)
        assert "local token" in message

    assert (database_rows(daemon), files_under(images_dir), files_under(trash_dir)) == before
