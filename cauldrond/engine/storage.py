"""Storage faults: a full, failing or read-only disk pauses the queue instead of failing jobs or the engine.

A job that could not be written or committed because of the disk is not at fault: it goes back to the queue
and runs again once the disk can take it. The engine asks ``StorageGuard`` before each batch whether there is
room for it, and pauses with a reason when there is not (or when a write or commit failed); a periodic probe
resumes it when a real write succeeds again. The pause is separate from ``queue.pause``: the owner's pause is
never lifted by the disk coming back, and ``queue.resume`` lifts both.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cauldrond.media.png import PNG_SUFFIX, TEMP_PREFIX

log = logging.getLogger(__name__)

MB = 1024 * 1024
# errno values that mean "the storage cannot take this write now", as opposed to a bug in our code.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT}
# SQLite's primary result codes for the same conditions (extended codes carry them in the low byte).
_SQLITE_STORAGE_CODES = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY}
# An upper bound of one image file: an RGB pixel is 3 bytes and PNG rarely expands noise-like images much.
BYTES_PER_PIXEL = 3
PNG_OVERHEAD_BYTES = 64 * 1024  # text chunks (params, provider info) and headers
PROBE_BYTES = 64 * 1024


def storage_fault(exc: BaseException) -> str | None:
    """A short description when ``exc`` (or what caused it) is a storage failure, else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in STORAGE_ERRNOS:
            # No path in the reason: /healthz shows it to anyone who can reach the daemon.
            name = errno.errorcode.get(current.errno, str(current.errno))
            return f"{os.strerror(current.errno).lower()} ({name}) writing an image"
        if isinstance(current, sqlite3.Error):
            code = getattr(current, "sqlite_errorcode", None)
            if code is not None and code & 0xFF in _SQLITE_STORAGE_CODES:
                return f"database: {current}"
        current = current.__cause__ or current.__context__
    return None


def batch_bytes(cells: Iterable[Mapping[str, Any]]) -> int:
    """An upper bound of the bytes the image files of a batch of ``cells`` (job params) take."""
    return sum(
        int(cell.get("width", 512)) * int(cell.get("height", 512)) * BYTES_PER_PIXEL + PNG_OVERHEAD_BYTES
        for cell in cells
    )


class StorageGuard:
    """Free-space checks and the storage pause. All methods run on the event loop; disk calls go to threads."""

    def __init__(self, images_dir: Path, database_path: Path, min_free_mb: int, probe_interval_s: float) -> None:
        self.images_dir = images_dir
        self.database_path = database_path
        self.min_free_bytes = max(0, min_free_mb) * MB  # 0: no check before batches (write failures still pause)
        self.probe_interval_s = probe_interval_s
        self.reason: str | None = None
        self.paused_since: float | None = None
        self.pauses = 0
        self._needed_bytes = 0  # what the batch that paused needs, so a resume is not followed by a new pause
        self._changed = asyncio.Event()

    @property
    def paused(self) -> bool:
        return self.reason is not None

    async def status(self) -> dict[str, object]:
        """For system.info."""
        free = await asyncio.to_thread(_free_bytes, self.images_dir)
        return {
            "paused": self.paused,
            "reason": self.reason,
            "paused_for_s": round(time.monotonic() - self.paused_since, 1) if self.paused_since else None,
            "images_dir_free_bytes": free,
            "min_free_bytes": self.min_free_bytes,
        }

    async def shortage(self, needed_bytes: int) -> str | None:
        """The reason to pause before a batch whose files take ``needed_bytes``, or None if there is room."""
        if not self.min_free_bytes:
            return None
        required = needed_bytes + self.min_free_bytes
        for role, folder in (("images", self.images_dir), ("the database", self.database_path.parent)):
            free = await asyncio.to_thread(_free_bytes, folder)
            if free is not None and free < required:
                self._needed_bytes = needed_bytes
                return f"disk full: {free // MB} MB free for {role} (need {-(-required // MB)} MB)"
        return None

    def pause(self, reason: str, needed_bytes: int = 0) -> bool:
        """Pause for ``reason``; False if already paused (the first reason stays)."""
        self._needed_bytes = max(self._needed_bytes, needed_bytes)
        if self.reason is not None:
            return False
        self.reason = reason
        self.paused_since = time.monotonic()
        self.pauses += 1
        log.error("queue paused: %s", reason)
        return True

    def clear(self) -> bool:
        """Lift the pause; False if there was none."""
        was = self.reason is not None
        self.reason, self.paused_since, self._needed_bytes = None, None, 0
        self._changed.set()
        return was

    def wake(self) -> None:
        self._changed.set()

    async def wait(self, timeout: float) -> None:
        """Sleep until ``clear``/``wake`` or ``timeout`` seconds, whichever comes first."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def writable(self) -> bool:
        """Whether a real write to the images folder succeeds and leaves the room the paused batch needs."""
        return await asyncio.to_thread(self._probe)

    def _probe(self) -> bool:
        needed = max(self._needed_bytes + self.min_free_bytes, PROBE_BYTES)
        for folder in (self.images_dir, self.database_path.parent):
            free = _free_bytes(folder)
            if free is not None and free < needed:
                return False
        # A temp-named file (recovery sweeps any left by a crash): ENOSPC, EIO and EROFS all show up here.
        probe = self.images_dir / f"{TEMP_PREFIX}probe-{os.getpid()}{PNG_SUFFIX}"
        try:
            self.images_dir.mkdir(parents=True, exist_ok=True)
            with probe.open("wb") as handle:
                handle.write(b"\0" * PROBE_BYTES)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                probe.unlink(missing_ok=True)
        return True


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def remove_files(paths: Iterable[Path]) -> None:
    """Delete image files whose rows were never committed; best effort (recovery sweeps what is left)."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not remove %s (start-up recovery will): %s", path, exc)
