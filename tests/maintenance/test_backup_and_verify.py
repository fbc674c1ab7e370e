"""backups.create and images.verify against a real daemon: a consistent copy taken while work goes on, and
damage on disk found at the depth asked for. Expected hashes are computed here with hashlib from the files."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client, RpcError
from cauldron_client.cli import cli
from click.testing import CliRunner

from cauldrond.daemon import Daemon
from cauldrond.web.auth import hash_token
from tests.conftest import FAST, token_of, url_of
from tests.waiting import finished, until


def backed_up_images(dest: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(dest / "cauldron.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return [(int(r[0]), str(r[1]), str(r[2])) for r in db.execute("SELECT id, path, sha256 FROM images")]


def folder_state(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


async def test_backup_while_generating_is_consistent_and_refreshes_in_place(
    daemon: Daemon, client: Client, tmp_path: Path
) -> None:
    first = (await client.call("experiments.create", base=FAST, axes={"cfg_scale": [3, 5, 7]}))["experiment"]["id"]
    await finished(client, first)
    # A second sweep runs while the backup is taken: the backup must not stop it or see half of an image.
    busy = (await client.call("experiments.create", base=FAST, axes={"steps": [1, 2, 3, 4, 5, 6]}))["experiment"]
    dest = tmp_path / "backup"

    report = await client.call("backups.create", dest=str(dest))

    rows = backed_up_images(dest)
    assert report["images"] == len(rows) >= 3
    assert report["copied"] == len(rows) and report["missing"] == report["altered"] == []
    for _image_id, path, sha256 in rows:
        assert hashlib.sha256((dest / "images" / path).read_bytes()).hexdigest() == sha256
    done = await finished(client, busy["id"])
    assert done["experiment"]["counts"]["done"] == 6  # the work went on

    # Again into the same folder: the files already there are kept, the new images are added.
    again = await client.call("backups.create", dest=str(dest))
    assert again["images"] == len(backed_up_images(dest)) == 9
    assert again["unchanged"] == len(rows) and again["copied"] == 9 - len(rows)


async def test_backup_refuses_bad_destinations_and_changes_nothing(
    daemon: Daemon, client: Client, tmp_path: Path
) -> None:
    foreign = tmp_path / "holiday-photos"
    foreign.mkdir()
    (foreign / "beach.jpg").write_bytes(b"\xff\xd8 not ours")
    before = folder_state(foreign)
    cases = {
        "relative": "backups/today",
        "inside the data dir": str(daemon.settings.data_dir / "backup"),
        "not empty": str(foreign),
    }
    for why, dest in cases.items():
        with pytest.raises(RpcError) as refused:
            await client.call("backups.create", dest=dest)
        assert refused.value.code == "invalid_params", why
    assert folder_state(foreign) == before
    assert not (daemon.settings.data_dir / "backup").exists()

    # A paired device may not write files on the daemon's machine.
    device_token = "device-token-for-this-test"
    await daemon.services.store.tokens.add("phone", hash_token(device_token))
    async with Client(url_of(daemon), device_token) as phone:
        with pytest.raises(RpcError) as forbidden:
            await phone.call("backups.create", dest=str(tmp_path / "phone-backup"))
    assert forbidden.value.code == "forbidden"
    assert not (tmp_path / "phone-backup").exists()


async def image_paths(client: Client, experiment_id: int) -> dict[int, Path]:
    listed = await client.call("images.list", experiment_id=experiment_id, limit=100)
    return {image["id"]: Path(image["file"]) for image in listed["images"]}


async def test_verify_finds_damage_at_the_depth_asked_for_and_requeue_repairs(daemon: Daemon, client: Client) -> None:
    experiment_id = (await client.call("experiments.create", base=FAST, axes={"steps": [1, 2, 3]}))["experiment"]["id"]
    await finished(client, experiment_id)
    clean = await client.call("images.verify")
    assert (clean["checked"], clean["ok"], clean["depth"]) == (3, 3, "sha256")

    paths = await image_paths(client, experiment_id)
    gone_id, altered_id, _kept = sorted(paths)
    paths[gone_id].unlink()
    altered = paths[altered_id]
    data = bytearray(altered.read_bytes())
    data[-20] ^= 0xFF  # same size, other bytes: only a hash notices
    altered.write_bytes(bytes(data))

    quick = await client.call("images.verify", quick=True)
    assert [m["image_id"] for m in quick["missing"]] == [gone_id] and quick["altered"] == []
    full = await client.call("images.verify")
    assert [m["image_id"] for m in full["missing"]] == [gone_id]
    assert [a["image_id"] for a in full["altered"]] == [altered_id]
    assert (full["missing_count"], full["altered_count"], full["ok"]) == (1, 1, 1)

    # The CLI says the same and exits 3, so a cron job can act on it.
    base = ["--url", url_of(daemon), "--token", token_of(daemon)]
    result = await asyncio.to_thread(CliRunner().invoke, cli, [*base, "images", "verify"])
    assert result.exit_code == 3, result.output
    assert f"image {altered_id}" in result.output and f"image {gone_id}" in result.output

    repaired = await client.call("images.verify", requeue=True)
    assert len(repaired["requeued"]) == 2

    async def all_done() -> dict[str, Any] | None:
        got = await client.call("experiments.get", experiment_id=experiment_id)
        return got if got["experiment"]["counts"]["done"] == 3 else None

    await until(all_done, timeout=120)
    after = await client.call("images.verify")
    assert (after["checked"], after["ok"]) == (3, 3)
