"""Which errors are storage faults (pause and requeue) and which are bugs (fail the batch): real errors from a
full device (/dev/full), a SQLite database at its page limit and a read-only database."""

from __future__ import annotations

import contextlib
import errno
import sqlite3
from pathlib import Path

import pytest

from cauldrond.engine.storage import PNG_OVERHEAD_BYTES, batch_bytes, storage_fault


def test_a_full_device_is_a_storage_fault() -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    with pytest.raises(OSError) as caught, open("/dev/full", "wb", buffering=0) as device:
        device.write(b"x")
    assert caught.value.errno == errno.ENOSPC
    assert storage_fault(caught.value) == "no space left on device (ENOSPC) writing an image"


def test_sqlite_full_and_read_only_are_storage_faults_and_a_bad_statement_is_not(tmp_path: Path) -> None:
    path = tmp_path / "small.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE t (x BLOB)")
        db.commit()
        page_count = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {page_count + 1}")
        with pytest.raises(sqlite3.Error) as full:
            db.execute("INSERT INTO t VALUES (?)", (b"\0" * 100_000,))
        with pytest.raises(sqlite3.Error) as bad:
            db.execute("SELEC 1")
    read_only = contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True))
    with read_only as connection, pytest.raises(sqlite3.Error) as refused:
        connection.execute("INSERT INTO t VALUES (1)")
    assert storage_fault(full.value) == "database: database or disk is full"
    assert storage_fault(refused.value) == "database: attempt to write a readonly database"
    assert storage_fault(bad.value) is None


def test_the_cause_of_a_wrapped_error_counts_and_other_errors_do_not() -> None:
    try:
        try:
            raise OSError(errno.EIO, "Input/output error")
        except OSError as inner:
            raise RuntimeError("while writing") from inner
    except RuntimeError as outer:
        assert storage_fault(outer) == "input/output error (EIO) writing an image"
    assert storage_fault(OSError(errno.ENOENT, "No such file")) is None
    assert storage_fault(KeyError("a bug")) is None


def test_a_batch_needs_three_bytes_a_pixel_plus_the_overhead_per_image() -> None:
    cells = [{"width": 64, "height": 64}, {"width": 512, "height": 768}]
    assert batch_bytes(cells) == 64 * 64 * 3 + 512 * 768 * 3 + 2 * PNG_OVERHEAD_BYTES
