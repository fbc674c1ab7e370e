"""Do the image files on disk match their rows? Two depths of the same check.

``quick`` compares each file's size with the recorded one (one ``stat`` per file): what the daemon does at every
start, so starting stays fast at 100,000 images (bench/startup_check.py). ``full`` also hashes every byte against
the recorded sha256: what ``images.verify`` does on demand, and what catches a file altered in place.
The write path (fsynced temp file, rename, then COMMIT) means a crash never leaves a row with a torn file; what
these checks find is damage from outside (a disk, a person, a sync tool).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

HASH_CHUNK_BYTES = 1 << 20
# Hashing releases the GIL, so a few threads keep a disk busy without starving the event loop's executor.
CHECK_CONCURRENCY = 4

FileState = Literal["ok", "missing", "altered"]
# How a check reaches a thread: asyncio.to_thread at start-up; a pool of its own when the daemon serves.
ThreadRunner = Callable[..., Awaitable[FileState]]


@dataclass(frozen=True)
class ImageFile:
    image_id: int
    job_id: int
    path: str  # relative to the images folder, "/"-separated
    sha256: str
    size_bytes: int


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
    path = inside(images_dir, image.path)
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


async def check_files(
    images_dir: Path,
    images: Sequence[ImageFile],
    *,
    full: bool,
    run: ThreadRunner = asyncio.to_thread,
    workers: int = CHECK_CONCURRENCY,
) -> list[FileState]:
    """The state of each file, checked by a few workers (not one task per file: there may be 100,000)."""
    states: list[FileState] = ["ok"] * len(images)
    pending = iter(range(len(images)))

    async def worker() -> None:
        # The iterator is shared: next() never awaits, so each index goes to exactly one worker.
        for index in pending:
            states[index] = await run(file_state, images_dir, images[index], full)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return states
