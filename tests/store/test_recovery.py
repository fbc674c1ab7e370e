"""Start-up recovery on a real images folder and database: each kind of crash debris is cleaned up, and
nothing else is touched."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from cauldrond.media.png import png_text_chunks, write_png_atomic
from cauldrond.store import NewImage, RecoveryReport, Store, recover

MAX_ATTEMPTS = 3


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "images"
    folder.mkdir(parents=True)
    return folder


def write_image(images_dir: Path, experiment_id: int, idx: int, colour: int = 0) -> NewImage:
    """What the engine does on its worker thread: the file is on disk before any row points at it."""
    params = {"prompt": f"cell {idx}", "seed": idx, "width": 8, "height": 8}
    written = write_png_atomic(
        Image.new("RGB", (8, 8), (colour, idx, 7)),
        images_dir / f"exp-{experiment_id:06d}",
        f"{idx:05d}-{idx}.png",
        png_text_chunks(params, {"model": "tiny"}),
    )
    return NewImage(
        path=written.path.relative_to(images_dir).as_posix(),
        sha256=written.sha256,
        size_bytes=written.size_bytes,
        seed=idx,
        params=params,
        metadata={"model": "tiny"},
        wall_time_s=0.1,
        peak_memory_bytes=None,
    )


async def finished_experiment(store: Store, images_dir: Path, count: int) -> tuple[int, list[int], list[int]]:
    """An experiment whose jobs are all done with real files. Returns (experiment id, job ids, image ids)."""
    experiment_id, job_ids = await store.experiments.create(
        name="done", kind="grid", spec={}, priority=0, cells=[{"prompt": str(i)} for i in range(count)]
    )
    await store.jobs.mark_running(job_ids)
    image_ids = [
        await store.jobs.complete(job_id, write_image(images_dir, experiment_id, idx))
        for idx, job_id in enumerate(job_ids)
    ]
    return experiment_id, job_ids, image_ids


def snapshot(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


async def test_a_clean_start_changes_nothing(store: Store, images_dir: Path) -> None:
    await finished_experiment(store, images_dir, 3)
    (images_dir / "README.txt").write_text("not ours to judge")
    before = snapshot(images_dir)

    report = await recover(store, images_dir, MAX_ATTEMPTS)

    assert report == RecoveryReport()
    assert snapshot(images_dir) == before
    assert len(await store.images.files()) == 3


async def test_each_kind_of_debris_is_handled_and_nothing_else_is_touched(store: Store, images_dir: Path) -> None:
    experiment_id, job_ids, image_ids = await finished_experiment(store, images_dir, 5)
    files = {image.image_id: image.path for image in await store.images.files()}
    healthy = [files[image_ids[0]], files[image_ids[1]], files[image_ids[4]]]
    # A crash between rename and COMMIT leaves an orphan; one before the rename leaves a temp file.
    orphan = images_dir / f"exp-{experiment_id:06d}" / "00099-99.png"
    orphan.write_bytes((images_dir / healthy[0]).read_bytes())
    nested_temp = images_dir / f"exp-{experiment_id:06d}" / ".tmp-0123456789abcdef.png"
    nested_temp.write_bytes(b"half a png")
    top_temp = images_dir / ".tmp-fedcba9876543210.png"
    top_temp.write_bytes(b"")
    # Damage on disk: one file gone, one file cut short (start-up compares sizes; images.verify hashes).
    (images_dir / files[image_ids[2]]).unlink()
    damaged = images_dir / files[image_ids[3]]
    damaged.write_bytes(damaged.read_bytes()[:-10])
    # Things recovery must leave alone.
    (images_dir / "notes.txt").write_text("mine")
    (images_dir / "grids").mkdir()
    (images_dir / "grids" / "keep.json").write_text("{}")
    keep = {*healthy, "notes.txt", "grids/keep.json"}
    untouched = {path: digest for path, digest in snapshot(images_dir).items() if path in keep}
    assert len(untouched) == 5

    report = await recover(store, images_dir, MAX_ATTEMPTS)

    assert report.temp_files_removed == 2
    assert report.orphans_removed == 1
    assert report.missing_files == [job_ids[2]]
    assert report.altered_files == [job_ids[3]]
    assert (report.requeued, report.quarantined) == ([], [])
    assert snapshot(images_dir) == untouched
    assert [image.image_id for image in await store.images.files()] == [
        image_ids[0],
        image_ids[1],
        image_ids[4],
    ]
    statuses = {job.id: job.status for job in await store.jobs.page(experiment_id, 10, 0)}
    assert statuses == {
        job_ids[0]: "done",
        job_ids[1]: "done",
        job_ids[2]: "queued",
        job_ids[3]: "queued",
        job_ids[4]: "done",
    }
    assert [job.job_id for job in await store.jobs.queued()] == [job_ids[2], job_ids[3]]
    missing_job = await store.jobs.get(job_ids[2])
    assert missing_job is not None and missing_job.last_error == "image file missing at start"
    assert report.to_dict()["missing_files"] == [job_ids[2]]

    # Running it again finds nothing more to do.
    assert await recover(store, images_dir, MAX_ATTEMPTS) == RecoveryReport()


async def test_a_crash_before_the_commit_leaves_an_orphan_that_the_next_start_removes(tmp_path: Path) -> None:
    database = tmp_path / "data" / "cauldron.sqlite3"
    images_dir = tmp_path / "data" / "images"
    store = await Store.open(database)
    experiment_id, (committed, interrupted) = await store.experiments.create(
        name="crash", kind="grid", spec={}, priority=0, cells=[{"prompt": "a"}, {"prompt": "b"}]
    )
    await store.jobs.mark_running([committed, interrupted])
    kept = write_image(images_dir, experiment_id, 0)
    await store.jobs.complete(committed, kept)
    lost = write_image(images_dir, experiment_id, 1)  # on disk, fsynced, renamed... and then the process dies
    await store.close()

    store = await Store.open(database)
    try:
        report = await recover(store, images_dir, MAX_ATTEMPTS)
        assert report.orphans_removed == 1 and report.requeued == [interrupted]
        assert not (images_dir / lost.path).exists()
        assert (images_dir / kept.path).exists()
        job = await store.jobs.get(interrupted)
        assert job is not None and (job.status, job.attempts, job.suspect, job.strikes) == ("queued", 1, True, 0)
        assert [row.job_id for row in await store.jobs.queued()] == [interrupted]
    finally:
        await store.close()


async def test_a_row_whose_path_leaves_the_images_folder_is_treated_as_missing(tmp_path: Path) -> None:
    database = tmp_path / "data" / "cauldron.sqlite3"
    images_dir = tmp_path / "data" / "images"
    images_dir.mkdir(parents=True)
    outside = tmp_path / "data" / "secret.png"
    outside.write_bytes(b"not an image of ours")
    store = await Store.open(database)
    _experiment, (job_id,) = await store.experiments.create(
        name="x", kind="grid", spec={}, priority=0, cells=[{"prompt": "a"}]
    )
    await store.close()
    # Only a hand-edited database can hold such a row: the store refuses the path itself.
    with sqlite3.connect(database) as db:
        db.execute("UPDATE jobs SET status = 'done'")
        db.execute(
            "INSERT INTO images (job_id, experiment_id, path, sha256, size_bytes, seed, params, metadata, "
            "wall_time_s, created_at) VALUES (?, 1, '../secret.png', ?, 20, 1, '{}', '{}', 0.1, 'now')",
            (job_id, hashlib.sha256(outside.read_bytes()).hexdigest()),
        )

    store = await Store.open(database)
    try:
        report = await recover(store, images_dir, MAX_ATTEMPTS)
    finally:
        await store.close()
    assert report.missing_files == [job_id]
    assert outside.exists()


async def test_recovery_without_an_images_folder(store: Store, tmp_path: Path) -> None:
    report = await recover(store, tmp_path / "nowhere", MAX_ATTEMPTS)
    assert report == RecoveryReport()
    assert not (tmp_path / "nowhere").exists()
