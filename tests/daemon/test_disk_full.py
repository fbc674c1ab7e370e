"""A disk that fills up during a sweep, for real: a small tmpfs is filled with a filler file while the daemon
works. Nothing may fail or be lost: the queue pauses with the reason, the daemon answers, and once the filler is
deleted the sweep finishes with every cell done exactly once.

Mounting needs root (as here and in CI). Elsewhere the tests skip with the reason; under CI=true they fail.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cauldron_client import Client

from cauldrond.daemon import Daemon
from cauldrond.media.png import TEMP_PREFIX
from tests.conftest import FAST, make_settings, token_of, url_of
from tests.waiting import finished, until

pytestmark = pytest.mark.slow

SWEEP = {"seed": [1, 2, 3], "cfg_scale": [5.0, 7.0, 9.0, 11.0]}  # 12 cells, batches of 4
CELLS = 12


@contextlib.contextmanager
def mounted(path: Path, *args: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", *args, str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = f"cannot mount {' '.join(args)} here: {done.stderr.strip() or done.returncode}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI must run this test as root)")
        pytest.skip(reason + "; run as root to test a real full disk")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def small_tmpfs(path: Path, size: str = "8m") -> contextlib.AbstractContextManager[Path]:
    return mounted(path, "-t", "tmpfs", "-o", f"size={size}", "tmpfs")


def fill(folder: Path) -> Path:
    """Write a filler file until the file system refuses with ENOSPC; what is left is not one page."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1):
            while True:
                try:
                    os.write(fd, b"\xa5" * chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    finally:
        os.close(fd)
    return filler


def db_rows(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    # Read-only, beside the running daemon (WAL lets a reader in while it writes).
    with contextlib.closing(sqlite3.connect(f"file:{data_dir / 'cauldron.sqlite3'}?mode=ro", uri=True)) as db:
        return db.execute(sql).fetchall()


@contextlib.asynccontextmanager
async def running(data_dir: Path, models_dir: Path, **settings: Any) -> AsyncIterator[tuple[Daemon, Client]]:
    daemon = Daemon(make_settings(data_dir, models_dir, **settings))
    await daemon.start()
    try:
        async with Client(url_of(daemon), token_of(daemon)) as client:
            yield daemon, client
    finally:
        await daemon.stop()


async def healthz(daemon: Daemon) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(url_of(daemon) + "/healthz") as reply:
        return reply.status, await reply.json()


async def create_sweep(client: Client, name: str = "sweep", **base: Any) -> int:
    created = await client.call("experiments.create", name=name, base={**FAST, **base}, axes=SWEEP)
    experiment_id: int = created["experiment"]["id"]
    return experiment_id


async def paused_reason(client: Client) -> str | None:
    info = await client.call("system.info")
    reason: str | None = info["queue"]["paused_reason"]
    return reason


async def assert_consistent_while_paused(client: Client, data_dir: Path) -> None:
    """Nothing failed, no temp file, a sound database, and the in-memory queue agrees with it."""
    assert db_rows(data_dir, "PRAGMA integrity_check") == [("ok",)]
    assert db_rows(data_dir, "SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == [(0,)]
    temps = [p for p in (data_dir / "images").rglob("*") if p.name.startswith(TEMP_PREFIX)]
    assert temps == []
    listed = await client.call("queue.list", limit=1000)
    queued_in_db = {row[0] for row in db_rows(data_dir, "SELECT id FROM jobs WHERE status = 'queued'")}
    running_in_db = {row[0] for row in db_rows(data_dir, "SELECT id FROM jobs WHERE status = 'running'")}
    assert {job["id"] for job in listed["jobs"]} == queued_in_db
    assert {job["id"] for job in listed["running"]} == running_in_db
    assert listed["paused"] is True and listed["paused_reason"]


def assert_done_exactly_once(data_dir: Path, experiment_id: int) -> None:
    images = db_rows(data_dir, f"SELECT job_id, path, sha256 FROM images WHERE experiment_id = {experiment_id}")
    job_ids = [row[0] for row in images]
    assert len(job_ids) == CELLS and len(set(job_ids)) == CELLS, "every cell done exactly once"
    statuses = db_rows(data_dir, f"SELECT status, COUNT(*) FROM jobs WHERE experiment_id = {experiment_id} GROUP BY 1")
    assert statuses == [("done", CELLS)]
    for _, path, sha256 in images:
        assert hashlib.sha256((data_dir / "images" / path).read_bytes()).hexdigest() == sha256
    on_disk = {p.relative_to(data_dir / "images").as_posix() for p in (data_dir / "images").rglob("*.png")}
    recorded = {str(row[0]) for row in db_rows(data_dir, "SELECT path FROM images")}
    assert on_disk == recorded, "no orphan or temp files"
    assert db_rows(data_dir, "PRAGMA integrity_check") == [("ok",)]


async def test_png_writes_fail_first_the_queue_pauses_and_finishes_once_space_returns(
    tmp_path: Path, models_dir: Path
) -> None:
    data_dir = tmp_path / "data"
    # The images folder is the small file system; the database stays on the big one. The free-space check is
    # off (0), so the full disk is met by real writes failing with ENOSPC.
    with small_tmpfs(data_dir / "images") as images:
        async with (
            running(data_dir, models_dir, min_free_disk_mb=0) as (daemon, client),
            client.events(["queue.paused", "queue.resumed", "job.failed"]) as stream,
        ):
            experiment_id = await create_sweep(client)

            async def some_done() -> bool:
                got = await client.call("experiments.get", experiment_id=experiment_id)
                return bool(got["experiment"]["counts"]["done"] >= 4)

            await until(some_done, timeout=120)
            filler = fill(images)
            reason = await until(lambda: paused_reason(client), timeout=120)
            assert "ENOSPC" in reason
            paused = await stream.next(10)
            assert paused is not None and paused["type"] == "queue.paused" and paused["reason"] == reason

            await assert_consistent_while_paused(client, data_dir)
            status, health = await healthz(daemon)
            assert (status, health["ok"], health["engine"], health["paused_reason"]) == (200, True, True, reason)
            # Work can be queued and cancelled on a paused queue; the queue and the database agree throughout.
            other = await create_sweep(client, name="to cancel while paused", prompt="another")
            await assert_consistent_while_paused(client, data_dir)
            cancelled = await client.call("experiments.cancel", experiment_id=other)
            assert cancelled["experiment"]["counts"]["queued"] == 0
            await assert_consistent_while_paused(client, data_dir)

            filler.unlink()
            result = await finished(client, experiment_id, timeout=240)
            assert result["experiment"]["counts"]["done"] == CELLS
            resumed = await stream.next(30)
            assert resumed is not None and resumed["type"] == "queue.resumed"
            assert await paused_reason(client) is None
        assert_done_exactly_once(data_dir, experiment_id)
        assert db_rows(data_dir, "SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == [(0,)]


async def test_sqlite_fails_to_commit_first_nothing_is_lost(tmp_path: Path, models_dir: Path) -> None:
    data_dir = tmp_path / "data"
    # The database is on the small file system, the images on the big one: here SQLite meets the full disk.
    with small_tmpfs(data_dir), mounted(data_dir / "images", "--bind", str(_folder(tmp_path / "big-images"))):
        async with running(data_dir, models_dir, min_free_disk_mb=0) as (daemon, client):
            experiment_id = await create_sweep(client)

            async def some_done() -> bool:
                got = await client.call("experiments.get", experiment_id=experiment_id)
                return bool(got["experiment"]["counts"]["done"] >= 4)

            await until(some_done, timeout=120)
            filler = fill(data_dir)
            reason = await until(lambda: paused_reason(client), timeout=120)
            assert reason.startswith("database:") and "full" in reason
            # The daemon answers, the engine is alive, nothing failed, the database is sound and nothing is
            # marked running that is not held by the engine.
            assert (await client.call("system.info"))["engine"]["alive"] is True
            assert db_rows(data_dir, "PRAGMA integrity_check") == [("ok",)]
            assert db_rows(data_dir, "SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == [(0,)]
            held = {job.job_id for job in daemon.services.engine.running_jobs} if daemon.services else set()
            running_in_db = {row[0] for row in db_rows(data_dir, "SELECT id FROM jobs WHERE status = 'running'")}
            assert running_in_db == held
            assert not [p for p in (data_dir / "images").rglob("*") if p.name.startswith(TEMP_PREFIX)]

            filler.unlink()
            result = await finished(client, experiment_id, timeout=240)
            assert result["experiment"]["counts"]["done"] == CELLS
            await assert_no_pause(client)
        assert_done_exactly_once(data_dir, experiment_id)


async def test_too_little_free_space_pauses_before_a_batch_and_resumes_by_itself(
    tmp_path: Path, models_dir: Path
) -> None:
    data_dir = tmp_path / "data"
    with small_tmpfs(data_dir / "images") as images:
        async with running(data_dir, models_dir, min_free_disk_mb=2) as (_, client):
            # 1 MB left: less than the 2 MB margin plus the batch's files, so no batch may start.
            taken = _take(images, keep_free=1 << 20)
            async with client.events(["queue.paused"]) as stream:
                experiment_id = await create_sweep(client)
                event = await stream.next(60)
            assert event is not None and event["reason"].startswith("disk full:") and "for images" in event["reason"]
            info = await client.call("system.info")
            assert info["queue"]["paused"] is True and info["queue"]["paused_reason"] == event["reason"]
            got = await client.call("experiments.get", experiment_id=experiment_id)
            assert got["experiment"]["counts"]["queued"] == CELLS, "nothing started, nothing failed"
            # queue.resume lifts the pause, and the next batch's check pauses again: the disk is still short.
            await client.call("queue.resume")
            await until(lambda: paused_reason(client), timeout=60)
            taken.unlink()
            result = await finished(client, experiment_id, timeout=240)
            assert result["experiment"]["counts"]["done"] == CELLS


async def assert_no_pause(client: Client) -> None:
    info = await client.call("system.info")
    assert info["queue"]["paused"] is False and info["queue"]["paused_reason"] is None


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _take(folder: Path, keep_free: int) -> Path:
    """Take space until about ``keep_free`` bytes are left."""
    stat = os.statvfs(folder)
    taken = folder / "taken.bin"
    taken.write_bytes(b"\x5a" * max(0, stat.f_bavail * stat.f_frsize - keep_free))
    return taken


def remount(path: Path, mode: str) -> None:
    """Remount ``path`` read-only or read-write; a write in flight makes the kernel refuse (EBUSY) for a moment."""
    for _ in range(200):
        done = subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], capture_output=True, check=False)
        if done.returncode == 0:
            return
    raise AssertionError(f"could not remount {path} {mode}: {done.stderr!r}")


async def test_a_file_system_turned_read_only_pauses_and_resumes_when_writable(
    tmp_path: Path, models_dir: Path
) -> None:
    data_dir = tmp_path / "data"
    with small_tmpfs(data_dir / "images") as images:
        async with running(data_dir, models_dir, min_free_disk_mb=0) as (_, client):
            experiment_id = await create_sweep(client)

            async def some_done() -> bool:
                got = await client.call("experiments.get", experiment_id=experiment_id)
                return bool(got["experiment"]["counts"]["done"] >= 4)

            await until(some_done, timeout=120)
            remount(images, "ro")
            try:
                reason = await until(lambda: paused_reason(client), timeout=120)
                assert "EROFS" in reason
                await assert_consistent_while_paused(client, data_dir)
            finally:
                remount(images, "rw")
            result = await finished(client, experiment_id, timeout=240)
            assert result["experiment"]["counts"]["done"] == CELLS
            await assert_no_pause(client)
        assert_done_exactly_once(data_dir, experiment_id)
