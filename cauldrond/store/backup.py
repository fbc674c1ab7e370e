"""A consistent backup taken while the daemon runs: the database through SQLite's online backup API, then the image
files that snapshot refers to, each checked against its recorded hash on the way.

Consistency comes from the write order (docs/architecture.md, Durability): a row is committed only after its file
is on disk, and files are never changed afterwards, so every file the snapshot names exists and is complete. Images
committed after the snapshot are simply not in this backup (the next one takes them). A destination that holds an
earlier backup is updated in place: files already there with the recorded size and hash are not copied again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cauldrond.media.png import fsync_directory
from cauldrond.media.trash import png_path
from cauldrond.store.integrity import HASH_CHUNK_BYTES, ImageFile, sha256_of

DATABASE_NAME = "cauldron.sqlite3"
IMAGES_FOLDER = "images"
MANIFEST_NAME = "cauldron-backup.json"
FORMAT_VERSION = 1


class BackupError(RuntimeError):
    """The destination cannot take a backup (the message says why); nothing in it was changed."""


@dataclass
class BackupReport:
    destination: str
    database_bytes: int = 0
    images: int = 0  # image rows in the snapshot
    copied: int = 0  # files written by this backup
    unchanged: int = 0  # files an earlier backup to this destination already held, hash checked
    missing: list[int] = field(default_factory=list)  # image ids whose source file was gone
    altered: list[int] = field(default_factory=list)  # image ids whose source file no longer matched its hash
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_destination(dest: Path, data_dir: Path) -> None:
    """Refuse a destination that is relative, inside the data directory, or a folder with other things in it."""
    if not dest.is_absolute():
        raise BackupError(f"the backup destination must be an absolute path, got {str(dest)!r}")
    resolved, data = dest.resolve(), data_dir.resolve()
    if resolved == data or data in resolved.parents or resolved in data.parents:
        raise BackupError(f"the backup destination {str(dest)!r} must be outside the data directory")
    if resolved.exists() and not resolved.is_dir():
        raise BackupError(f"the backup destination {str(dest)!r} exists and is not a folder")
    if resolved.is_dir() and any(resolved.iterdir()) and not (resolved / MANIFEST_NAME).is_file():
        raise BackupError(
            f"the backup destination {str(dest)!r} is not empty and holds no earlier backup ({MANIFEST_NAME}); "
            "choose an empty or new folder"
        )


def snapshot_database(source: Path, target: Path) -> int:
    """Copy the live database into ``target`` in one backup step (a read transaction: WAL writers go on).
    The copy is a self-contained file (rollback journal, not WAL). Returns its size."""
    temp = target.with_name(f".tmp-{target.name}")
    temp.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(source)) as live, contextlib.closing(sqlite3.connect(temp)) as copy:
        live.backup(copy)
        copy.execute("PRAGMA journal_mode = DELETE")
        result = copy.execute("PRAGMA integrity_check").fetchone()
        if result is None or result[0] != "ok":
            raise BackupError(f"the database copy failed its integrity check: {result}")
    with temp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, target)
    fsync_directory(target.parent)
    return target.stat().st_size


def snapshot_images(database: Path) -> list[ImageFile]:
    with contextlib.closing(sqlite3.connect(database)) as db:
        rows = db.execute(
            "SELECT id, job_id, path, sha256, size_bytes, deleted_at IS NOT NULL FROM images ORDER BY id"
        ).fetchall()
    return [ImageFile(int(r[0]), int(r[1]), str(r[2]), str(r[3]), int(r[4]), bool(r[5])) for r in rows]


def _copy_checked(source: Path, target: Path, expected_sha256: str) -> bool:
    """Copy ``source`` to ``target`` hashing what was read; False (and nothing left at ``target``) on mismatch."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".tmp-{target.name}")
    digest = hashlib.sha256()
    with source.open("rb") as reader, temp.open("wb") as writer:
        while chunk := reader.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    if digest.hexdigest() != expected_sha256:
        temp.unlink()
        return False
    os.replace(temp, target)
    return True


def _already_there(target: Path, image: ImageFile) -> bool:
    try:
        return target.stat().st_size == image.size_bytes and sha256_of(target) == image.sha256
    except FileNotFoundError:
        return False


def write_backup(database: Path, images_dir: Path, dest: Path, data_dir: Path) -> BackupReport:
    """Back the daemon's data up into ``dest`` (blocking: run it on a worker thread)."""
    started = time.monotonic()
    check_destination(dest, data_dir)
    dest.mkdir(parents=True, exist_ok=True)
    report = BackupReport(destination=str(dest))
    report.database_bytes = snapshot_database(database, dest / DATABASE_NAME)
    images = snapshot_images(dest / DATABASE_NAME)
    report.images = len(images)
    folders: set[Path] = set()
    for image in images:
        # A trashed image is copied too, into the backup's own trash folder (media/trash.py): the rows say so.
        source = png_path(images_dir, image.path, trashed=image.trashed)
        target = png_path(dest / IMAGES_FOLDER, image.path, trashed=image.trashed)
        if source is None or target is None or not source.is_file():
            report.missing.append(image.image_id)
        elif _already_there(target, image):
            report.unchanged += 1
        elif _copy_checked(source, target, image.sha256):
            report.copied += 1
            folders.add(target.parent)
        else:
            report.altered.append(image.image_id)
    for folder in sorted(folders):
        fsync_directory(folder)
    report.seconds = round(time.monotonic() - started, 3)
    manifest = {"format": FORMAT_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (dest / MANIFEST_NAME).write_text(json.dumps({**manifest, **report.to_dict()}, indent=2) + "\n")
    fsync_directory(dest)
    return report
