"""The trash on a real images folder and database: delete, restore and empty move real files, a restart in
between re-queues nothing, an interrupted move is put right at the next start, and bad input changes nothing."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

import pytest

from cauldrond.media.trash import move_all
from cauldrond.store import Store, recover
from cauldrond.store.backup import write_backup
from cauldrond.store.integrity import check_files
from cauldrond.store.trash import TrashError
from tests.store.test_recovery import MAX_ATTEMPTS, finished_experiment, images_dir, snapshot, write_image

__all__ = ["images_dir"]  # the fixture, shared with the recovery tests

SIZES = (256, 768)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def trash_of(images_dir: Path) -> Path:
    return images_dir.parent / "trash" / "images"


def rows(store: Store) -> list[tuple[object, ...]]:
    with sqlite3.connect(store.path) as db:
        return db.execute("SELECT id, job_id, path, sha256, favorite, rating, deleted_at FROM images").fetchall()


async def test_delete_restart_restore_empty(store: Store, images_dir: Path) -> None:
    _, job_ids, image_ids = await finished_experiment(store, images_dir, 3)
    victim = await store.images.get(image_ids[1])
    assert victim is not None
    live_file = images_dir / victim.path

    [deleted] = await store.trash.delete([victim.id], images_dir, SIZES)

    trashed_file = trash_of(images_dir) / victim.path
    assert deleted.deleted_at is not None
    assert not live_file.exists() and sha256_file(trashed_file) == victim.sha256
    assert [row.id for row in await store.images.page(experiment_id=None, limit=10, after_id=None)] == [
        image_ids[0],
        image_ids[2],
    ]

    # A restart: the trashed file is where its row says, so nothing is missing, swept or generated again.
    report = await recover(store, images_dir, MAX_ATTEMPTS)
    assert report.requeued == report.missing_files == report.altered_files == []
    assert report.orphans_removed == report.files_moved == 0
    assert await check_files(images_dir, await store.images.files(), full=True) == ["ok", "ok", "ok"]
    job = await store.jobs.get(job_ids[1])
    assert job is not None and job.status == "done" and job.image_id == victim.id

    [restored] = await store.trash.restore([victim.id], images_dir, SIZES)
    assert restored.deleted_at is None and not trashed_file.exists()
    assert sha256_file(live_file) == victim.sha256

    await store.trash.delete([victim.id], images_dir, SIZES)
    assert await store.trash.empty(images_dir, SIZES) == [victim.id]
    assert await store.images.get(victim.id) is None
    assert not trashed_file.exists() and not live_file.exists()
    assert [row[0] for row in rows(store)] == [image_ids[0], image_ids[2]]
    # Emptying again finds nothing; the other images were never touched.
    assert await store.trash.empty(images_dir, SIZES) == []
    assert (await recover(store, images_dir, MAX_ATTEMPTS)).requeued == []


async def test_bad_input_changes_nothing(store: Store, images_dir: Path) -> None:
    _, _, image_ids = await finished_experiment(store, images_dir, 3)
    await store.trash.delete([image_ids[0]], images_dir, SIZES)
    before_rows, before_live, before_trash = rows(store), snapshot(images_dir), snapshot(trash_of(images_dir))

    with pytest.raises(TrashError, match="no image 999") as unknown:
        await store.trash.delete([image_ids[1], 999], images_dir, SIZES)
    assert unknown.value.code == "not_found" and unknown.value.image_ids == [999]
    with pytest.raises(TrashError, match="already in the trash") as again:
        await store.trash.delete([image_ids[2], image_ids[0]], images_dir, SIZES)
    assert again.value.code == "invalid_params" and again.value.image_ids == [image_ids[0]]
    with pytest.raises(TrashError, match="not in the trash") as live:
        await store.trash.restore([image_ids[0], image_ids[1]], images_dir, SIZES)
    assert live.value.image_ids == [image_ids[1]]

    assert rows(store) == before_rows
    assert snapshot(images_dir) == before_live and snapshot(trash_of(images_dir)) == before_trash


async def test_a_delete_cut_short_before_its_commit_is_undone_at_start(store: Store, images_dir: Path) -> None:
    _, _, image_ids = await finished_experiment(store, images_dir, 2)
    image = await store.images.get(image_ids[0])
    assert image is not None
    # What a delete does before its COMMIT, then the process dies: the file is in the trash, the row says live.
    move_all([(images_dir / image.path, trash_of(images_dir) / image.path)])

    report = await recover(store, images_dir, MAX_ATTEMPTS)

    assert report.files_moved == 1 and report.requeued == report.missing_files == []
    assert sha256_file(images_dir / image.path) == image.sha256
    assert not (trash_of(images_dir) / image.path).exists()


async def test_a_restore_cut_short_before_its_commit_is_undone_at_start(store: Store, images_dir: Path) -> None:
    _, _, image_ids = await finished_experiment(store, images_dir, 2)
    image = await store.images.get(image_ids[1])
    assert image is not None
    await store.trash.delete([image.id], images_dir, SIZES)
    # A restore moved the file back and died before committing: the row still says trashed.
    move_all([(trash_of(images_dir) / image.path, images_dir / image.path)])

    report = await recover(store, images_dir, MAX_ATTEMPTS)

    assert report.files_moved == 1 and report.orphans_removed == 0 and report.requeued == []
    assert sha256_file(trash_of(images_dir) / image.path) == image.sha256
    assert not (images_dir / image.path).exists()
    row = await store.images.get(image.id)
    assert row is not None and row.deleted_at is not None


async def test_a_trashed_image_whose_file_is_gone_is_forgotten_not_generated_again(
    store: Store, images_dir: Path
) -> None:
    _, job_ids, image_ids = await finished_experiment(store, images_dir, 2)
    image = await store.images.get(image_ids[0])
    assert image is not None
    await store.trash.delete([image.id], images_dir, SIZES)
    (trash_of(images_dir) / image.path).unlink()

    report = await recover(store, images_dir, MAX_ATTEMPTS)

    assert report.requeued == report.missing_files == []
    assert await store.images.get(image.id) is None
    job = await store.jobs.get(job_ids[0])
    assert job is not None and job.status == "done"
    assert len(await store.jobs.queued()) == 0


async def test_orphans_and_temp_files_in_the_trash_are_swept(store: Store, images_dir: Path) -> None:
    _, _, image_ids = await finished_experiment(store, images_dir, 2)
    await store.trash.delete([image_ids[0]], images_dir, SIZES)
    kept = snapshot(trash_of(images_dir))
    folder = trash_of(images_dir) / "exp-000001"
    (folder / "99999-1.png").write_bytes(b"left by an emptying that died after its commit")
    (folder / ".tmp-0123456789abcdef.png").write_bytes(b"x")

    report = await recover(store, images_dir, MAX_ATTEMPTS)

    assert report.orphans_removed == 1 and report.temp_files_removed == 1
    assert snapshot(trash_of(images_dir)) == kept


async def test_an_emptied_images_id_never_comes_back(store: Store, images_dir: Path) -> None:
    # Browsers keep /images/<id>.png and /thumbs/<size>/<id>.webp for a year: a new image must get a new id.
    _, _, image_ids = await finished_experiment(store, images_dir, 2)
    newest = image_ids[-1]
    await store.trash.delete([newest], images_dir, SIZES)
    assert await store.trash.empty(images_dir, SIZES) == [newest]

    _, more_jobs, more_images = await finished_experiment(store, images_dir, 1)
    assert more_images == [newest + 1]

    # The same for an image forgotten because its file was lost: its regenerated image is numbered anew.
    assert await store.images.drop_and_requeue(more_images[0]) == more_jobs[0]
    await store.jobs.mark_running(more_jobs)
    regenerated = await store.jobs.complete(more_jobs[0], write_image(images_dir, 9, 0))
    assert regenerated == newest + 2


async def test_a_backup_keeps_trashed_images_in_its_own_trash(store: Store, images_dir: Path, tmp_path: Path) -> None:
    _, _, image_ids = await finished_experiment(store, images_dir, 2)
    [trashed] = await store.trash.delete([image_ids[0]], images_dir, SIZES)
    kept = await store.images.get(image_ids[1])
    assert kept is not None
    dest = tmp_path / "backup"

    report = await asyncio.to_thread(write_backup, store.path, images_dir, dest, images_dir.parent)

    assert report.images == 2 and report.copied == 2 and report.missing == report.altered == []
    assert sha256_file(dest / "trash" / "images" / trashed.path) == trashed.sha256
    assert sha256_file(dest / "images" / kept.path) == kept.sha256
    assert not (dest / "images" / trashed.path).exists()
