"""The trash: where a deleted image's files wait, inside the data directory, until the trash is emptied.

Layout: ``<data_dir>/trash/images/<the image's path>`` for the PNG and ``<data_dir>/trash/thumbs/<size>/<id>.webp``
for its thumbnails, beside ``<data_dir>/images`` and ``<data_dir>/thumbs``. Moving is a rename within the data
directory (atomic on one filesystem), then both folders are fsynced, as the PNG writer does for its rename.

The image row is the truth about where the file lives (``images.deleted_at`` set: in the trash). The files move
before the row changes; a crash between the two leaves the file where the uncommitted change put it, and start-up
recovery (``store/recovery.py``) moves it back to where its row says, so nothing is re-queued or called missing.
All functions here block: call them from a worker thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from cauldrond.media.png import fsync_directory

log = logging.getLogger(__name__)

TRASH_FOLDER = "trash"
IMAGES_FOLDER = "images"
THUMBS_FOLDER = "thumbs"
THUMB_SUFFIX = ".webp"


def trash_images_dir(images_dir: Path) -> Path:
    """Where trashed PNGs live: ``<data_dir>/trash/images`` for ``images_dir`` = ``<data_dir>/images``."""
    return images_dir.parent / TRASH_FOLDER / IMAGES_FOLDER


def thumbs_dir(images_dir: Path, *, trashed: bool) -> Path:
    data_dir = images_dir.parent
    return data_dir / TRASH_FOLDER / THUMBS_FOLDER if trashed else data_dir / THUMBS_FOLDER


def png_path(images_dir: Path, relative: str, *, trashed: bool) -> Path | None:
    """An image's PNG where its row says it lives; None when the recorded path would leave its folder."""
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or ".." in parts or "\\" in relative:
        return None
    return (trash_images_dir(images_dir) if trashed else images_dir).joinpath(*parts)


def thumb_path(images_dir: Path, size: int, image_id: int, *, trashed: bool) -> Path:
    return thumbs_dir(images_dir, trashed=trashed) / str(int(size)) / f"{int(image_id)}{THUMB_SUFFIX}"


def _move(source: Path, target: Path) -> None:
    if target.exists():
        # A rename would replace it: never overwrite a file some other row may own.
        raise FileExistsError(f"{target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(source, target)
    fsync_directory(target.parent)
    fsync_directory(target.parent.parent)
    fsync_directory(source.parent)


def move_all(moves: Sequence[tuple[Path, Path]]) -> None:
    """Rename each source to its target. If one fails, those already moved go back, then the error is raised:
    all of them move or none."""
    done: list[tuple[Path, Path]] = []
    try:
        for source, target in moves:
            _move(source, target)
            done.append((source, target))
    except BaseException:
        for source, target in reversed(done):
            try:
                _move(target, source)
            except OSError as exc:  # recovery puts it right at the next start: the row still says where
                log.error("trash: could not move %s back to %s: %s", target, source, exc)
        raise


def move_thumbnails(images_dir: Path, image_ids: Iterable[int], sizes: Iterable[int], *, to_trash: bool) -> None:
    """Move the thumbnails that exist along with their image. They are made again on demand, so a thumbnail
    that cannot move is only logged (``remove_thumbnails`` clears both places when the trash is emptied)."""
    for image_id in image_ids:
        for size in sizes:
            source = thumb_path(images_dir, size, image_id, trashed=not to_trash)
            if not source.is_file():
                continue
            try:
                _move(source, thumb_path(images_dir, size, image_id, trashed=to_trash))
            except OSError as exc:
                log.warning("trash: thumbnail %s stays where it is: %s", source, exc)


def remove_files(paths: Iterable[Path]) -> int:
    """Delete files for good (the trash being emptied); returns how many were there. Folders are fsynced."""
    removed = 0
    folders: set[Path] = set()
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
            folders.add(path.parent)
    for folder in folders:
        fsync_directory(folder)
    return removed
