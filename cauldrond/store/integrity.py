"""Do the image files on disk match their rows? Two depths of the same check.

The quick check compares each file's size with the recorded one (one directory walk, one ``stat`` per file): what
the daemon does at every start, so starting stays fast at 100,000 images (bench/startup_check.py). The full check
also hashes every byte against the recorded sha256: what ``images.verify`` does on demand, and what catches a
file altered in place. The write path (fsynced temp file, rename, then COMMIT) means a crash never leaves a row
with a torn file; what these checks find is damage from outside (a disk, a person, a sync tool).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from cauldrond.media.trash import png_path

HASH_CHUNK_BYTES = 1 << 20
# Hashing releases the GIL, so a few threads keep a disk busy without starving the event loop's executor.
CHECK_CONCURRENCY = 4
# Files per hop to a thread: many small stats, or a few files hashed (a hash reads the whole file).
CHUNK_QUICK = 512
CHUNK_FULL = 16

FileState = Literal["ok", "missing", "altered"]
# How a check reaches a thread: asyncio.to_thread at start-up; a pool of its own when the daemon serves.
ThreadRunner = Callable[..., Awaitable[list[FileState]]]


@dataclass(frozen=True)
class ImageFile:
    image_id: int
    job_id: int
    path: str  # relative to the images folder, "/"-separated
    sha256: str
    size_bytes: int
    # In the trash: the file lives under <data_dir>/trash/images/ (media/trash.py), and is checked there.
    trashed: bool = False


def inside(images_dir: Path, relative: str) -> Path | None:
    """The file a row names, or None when the name would leave the images folder."""
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or ".." in parts:
        return None
    return images_dir.joinpath(*parts)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def file_state(images_dir: Path, image: ImageFile, full: bool) -> FileState:
    path = png_path(images_dir, image.path, trashed=image.trashed)
    if path is None:
        return "missing"
    try:
        if path.stat().st_size != image.size_bytes:
            return "altered"
        if full and sha256_of(path) != image.sha256:
            return "altered"
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    return "ok"


def scan_sizes(images_dir: Path) -> dict[str, int]:
    """Every file under ``images_dir`` by "/"-separated relative path, with its size: one directory walk and
    one ``stat`` per file, no path objects per file (the start-up check at 100,000 images)."""
    sizes: dict[str, int] = {}
    folders = [(str(images_dir), "")]
    while folders:
        folder, prefix = folders.pop()
        try:
            entries = os.scandir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        with entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append((entry.path, f"{prefix}{entry.name}/"))
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if entry.is_file():
                        sizes[prefix + entry.name] = entry.stat().st_size
    return sizes


def size_states(
    on_disk: Mapping[str, int], images: Sequence[ImageFile], in_trash: Mapping[str, int] | None = None
) -> list[FileState]:
    """The quick check from one ``scan_sizes`` of the images folder (and one of the trash's): missing, or a size
    other than the recorded one. A trashed image is looked for in the trash only."""
    states: list[FileState] = []
    for image in images:
        size = (in_trash or {}).get(image.path) if image.trashed else on_disk.get(image.path)
        states.append("missing" if size is None else "ok" if size == image.size_bytes else "altered")
    return states


def _states(images_dir: Path, images: Sequence[ImageFile], full: bool) -> list[FileState]:
    return [file_state(images_dir, image, full) for image in images]


async def check_files(
    images_dir: Path,
    images: Sequence[ImageFile],
    *,
    full: bool,
    run: ThreadRunner = asyncio.to_thread,
    workers: int = CHECK_CONCURRENCY,
) -> list[FileState]:
    """The state of each file, checked by a few workers, a chunk of files per hop to a thread: a hop per file
    cost more than the ``stat`` it ran (100,000 images; bench/startup_check.py)."""
    chunk = CHUNK_FULL if full else CHUNK_QUICK
    starts = iter(range(0, len(images), chunk))
    states: list[FileState] = ["ok"] * len(images)

    async def worker() -> None:
        # The iterator is shared: next() never awaits, so each chunk goes to exactly one worker.
        for start in starts:
            states[start : start + chunk] = await run(_states, images_dir, images[start : start + chunk], full)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return states
