"""The data directory is the owner's alone: the directory 0700, the database and its WAL/SHM files 0600
(docs/security.md), whichever command created them first (``cauldrond models create-tiny`` often does)."""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
# SQLite gives its -wal and -shm files the database file's mode; these are tightened too if they already exist.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and its parents) or tighten it to 0700; mkdir's mode alone leaves an existing one as is."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)


def make_private_database(path: Path) -> None:
    """Create the database file empty with mode 0600 before SQLite opens it (SQLite would use the umask, 0644),
    or tighten an existing one and its side files."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(descriptor)
    os.chmod(path, FILE_MODE)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.chmod(side, FILE_MODE)


def is_inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
