"""cauldronctl's gallery commands against a real daemon: what each prints, and what the daemon's rows say after."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from cauldron_client import Client
from cauldron_client.cli import cli
from click.testing import CliRunner, Result

from cauldrond.daemon import Daemon
from tests.conftest import FAST, token_of, url_of
from tests.waiting import finished


def image_rows(daemon: Daemon) -> list[tuple[Any, ...]]:
    with sqlite3.connect(daemon.settings.database_path) as db:
        return db.execute("SELECT id, favorite, rating, deleted_at IS NOT NULL FROM images ORDER BY id").fetchall()


async def test_cauldronctl_marks_deletes_restores_empties_and_lists_prompts(daemon: Daemon, client: Client) -> None:
    created = await client.call("experiments.create", base=FAST, axes={"cfg_scale": [3, 7]})
    await finished(client, created["experiment"]["id"])
    first, second = sorted(i["id"] for i in (await client.call("images.list"))["images"])
    base = ["--url", url_of(daemon), "--token", token_of(daemon)]

    async def ctl(*args: str) -> Result:
        return await asyncio.to_thread(CliRunner().invoke, cli, [*base, *args])

    result = await ctl("images", "favorite", str(first))
    assert result.exit_code == 0 and f"image {first}: favourite, not rated" in result.output, result.output
    result = await ctl("images", "rate", str(second), "5")
    assert result.exit_code == 0 and f"image {second}: not a favourite, rated 5" in result.output, result.output
    assert image_rows(daemon) == [(first, 1, None, 0), (second, 0, 5, 0)]
    for flags, shown in ((["--favorites"], [first]), (["--min-rating", "5"], [second]), ([], [second, first])):
        result = await ctl("images", "list", *flags)
        ids = [line.split()[0] for line in result.output.splitlines() if line.split()]
        assert result.exit_code == 0 and [i for i in ids if i.isdigit()] == [str(i) for i in shown], result.output

    # Usage errors reach the daemon with nothing: exit 2, rows as they were.
    for args in (["images", "rate", str(second)], ["images", "rate", str(second), "6"], ["trash", "empty"]):
        assert (await ctl(*args)).exit_code == 2, args
    result = await ctl("images", "delete", "987654")
    assert result.exit_code == 2 and "no image 987654" in result.output
    assert image_rows(daemon) == [(first, 1, None, 0), (second, 0, 5, 0)]

    result = await ctl("images", "rate", str(second), "--clear")
    assert result.exit_code == 0 and "not rated" in result.output
    result = await ctl("images", "favorite", str(first), "--off")
    assert result.exit_code == 0 and "not a favourite" in result.output

    result = await ctl("images", "delete", str(first), str(second))
    assert result.exit_code == 0 and f"cauldronctl images restore {first} {second}" in result.output, result.output
    result = await ctl("trash", "list")
    assert result.exit_code == 0 and FAST["prompt"][:20] in result.output, result.output
    listed = [line.split()[0] for line in result.output.splitlines() if line.split()]
    assert [word for word in listed if word in (str(first), str(second))] == [str(second), str(first)]  # newest first
    result = await ctl("images", "restore", str(second))
    assert result.exit_code == 0 and f"restored: {second}" in result.output
    result = await ctl("trash", "empty", "--yes")
    assert result.exit_code == 0 and "deleted 1 image(s) for good" in result.output, result.output
    assert image_rows(daemon) == [(second, 0, None, 0)]

    result = await ctl("prompts", "lighthouse")
    assert result.exit_code == 0 and FAST["prompt"] in result.output, result.output
    result = await ctl("prompts", "submarine")
    assert result.exit_code == 0 and "no prompts" in result.output
