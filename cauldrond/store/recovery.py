"""Start-up recovery: make the database and the images folder agree again after a crash, before serving.

The write order (file fsynced and renamed, then row committed) means a crash can leave only three kinds of
debris: temp files (the crash hit before the rename), orphan PNGs (after the rename, before the COMMIT), and
jobs still marked ``running``. A row pointing at a missing or damaged file should never happen; if the disk
says otherwise, the row goes and its job is generated again, so a listed image is always a readable one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cauldrond.media.png import PNG_SUFFIX, is_temp_name
from cauldrond.store.store import Store

log = logging.getLogger(__name__)

HASH_CHUNK_BYTES = 1 << 20
# Hashing releases the GIL, so a few threads keep a disk busy without starving the event loop's executor.
HASH_CONCURRENCY = 4


@dataclass
class RecoveryReport:
    requeued: list[int] = field(default_factory=list)  # job ids back in the queue after an interruption
    failed: list[int] = field(default_factory=list)  # job ids failed after too many interruptions
    temp_files_removed: int = 0
    orphans_removed: int = 0
    missing_files: list[int] = field(default_factory=list)  # job ids requeued because their file was gone
    hash_mismatches: list[int] = field(default_factory=list)  # job ids requeued because their file changed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sweep(images_dir: Path, referenced: set[str]) -> tuple[int, int]:
    """Delete temp files and unreferenced PNGs under ``images_dir``. Returns (temp files, orphans) removed."""
    temps = orphans = 0
    for folder, _dirs, files in os.walk(images_dir):
        for name in files:
            path = Path(folder, name)
            if is_temp_name(name):
                kind = "temp file"
            elif name.endswith(PNG_SUFFIX) and path.relative_to(images_dir).as_posix() not in referenced:
                kind = "orphan image"
            else:
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("recovery: cannot remove %s %s: %s", kind, path, exc)
                continue
            log.info("recovery: removed %s %s", kind, path)
            if kind == "temp file":
                temps += 1
            else:
                orphans += 1
    return temps, orphans


def _inside(images_dir: Path, relative: str) -> Path | None:
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or ".." in parts:
        return None
    return images_dir.joinpath(*parts)


def _file_state(path: Path | None, expected_sha256: str) -> str:
    """'ok', 'missing' or 'mismatch'. Reads in chunks: images can be large and there can be many."""
    if path is None or not path.is_file():
        return "missing"
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
    except FileNotFoundError:
        return "missing"
    return "ok" if digest.hexdigest() == expected_sha256 else "mismatch"


async def _verify(images_dir: Path, files: list[tuple[int, int, str, str]]) -> list[str]:
    """The state of each image file, hashed by a few workers (not one task per file: there may be 100,000)."""
    states = ["ok"] * len(files)
    pending = iter(range(len(files)))

    async def worker() -> None:
        # The iterator is shared: next() never awaits, so each index goes to exactly one worker.
        for index in pending:
            _image_id, _job_id, path, sha256 = files[index]
            states[index] = await asyncio.to_thread(_file_state, _inside(images_dir, path), sha256)

    await asyncio.gather(*(worker() for _ in range(HASH_CONCURRENCY)))
    return states


async def recover(store: Store, images_dir: Path, max_attempts: int) -> RecoveryReport:
    """Run once at start, before the queue is rebuilt and before serving."""
    report = RecoveryReport()
    report.requeued, report.failed = await store.jobs.reap_interrupted(max_attempts)
    if report.requeued or report.failed:
        log.warning(
            "recovery: %d interrupted job(s) requeued, %d failed after %d interruptions",
            len(report.requeued),
            len(report.failed),
            max_attempts,
        )

    files = await store.images.files()
    referenced = {path for _image_id, _job_id, path, _sha in files}
    report.temp_files_removed, report.orphans_removed = await asyncio.to_thread(_sweep, images_dir, referenced)

    states = await _verify(images_dir, files)
    for (image_id, _job_id, path, _sha), state in zip(files, states, strict=True):
        if state == "ok":
            continue
        log.warning("recovery: image %d file %s is %s; its job will be generated again", image_id, path, state)
        job_id = await store.images.drop_and_requeue(image_id, reason=f"image file {state} at start")
        if job_id is None:
            continue
        if state == "missing":
            report.missing_files.append(job_id)
        else:
            report.hash_mismatches.append(job_id)
            # The row is gone, so the damaged file is now an orphan; remove it as the next start would.
            target = _inside(images_dir, path)
            if target is not None:
                await asyncio.to_thread(target.unlink, True)
    return report
