"""Rows the store hands out: plain frozen dataclasses with JSON columns already decoded.

``to_dict()`` gives only str/int/float/bool/None/list/dict values: a row goes straight into msgpack or JSON.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from cauldrond.store.database import loads

JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")


def _as_dict(row: Any) -> dict[str, Any]:
    # Shallow on purpose: the JSON columns are already plain dicts, and asdict() would deep-copy them.
    return {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}


def empty_counts() -> dict[str, int]:
    return dict.fromkeys((*JOB_STATUSES, "total"), 0)


@dataclass(frozen=True)
class ExperimentRow:
    id: int
    name: str
    kind: str
    spec: dict[str, Any]
    priority: int
    created_at: str
    updated_at: str
    cancelled_at: str | None
    # Job counts by status plus "total"; every key of JOB_STATUSES is present.
    counts: dict[str, int] = field(default_factory=empty_counts)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ExperimentRow:
        """A row with the experiment's columns plus one count column per status and ``total``."""
        counts = {status: int(row[status]) for status in JOB_STATUSES}
        counts["total"] = int(row["total"])
        return cls(
            id=row["id"],
            name=row["name"],
            kind=row["kind"],
            spec=loads(row["spec"]),
            priority=row["priority"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            cancelled_at=row["cancelled_at"],
            counts=counts,
        )

    @property
    def status(self) -> str:
        counts = self.counts
        if counts["running"]:
            return "running"
        if counts["queued"]:
            return "queued"
        if self.cancelled_at is not None:
            return "cancelled"
        if counts["total"] and counts["failed"] == counts["total"]:
            return "failed"
        return "done"

    def to_dict(self) -> dict[str, Any]:
        data = _as_dict(self)
        data["counts"] = dict(self.counts)
        data["status"] = self.status
        return data


@dataclass(frozen=True)
class QueuedJobRow:
    job_id: int
    experiment_id: int
    idx: int
    priority: int
    params: dict[str, Any]
    # The crash guard's state (docs/architecture.md, Durability).
    suspect: bool = False
    strikes: int = 0
    backoff_batches: int = 0
    not_before: float = 0.0

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> QueuedJobRow:
        return cls(row[0], row[1], row[2], row[3], loads(row[4]), bool(row[5]), row[6], row[7], row[8])

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class JobRow:
    id: int
    experiment_id: int
    idx: int
    params: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    image_id: int | None
    suspect: bool = False  # was running when the daemon died: runs alone until done (the crash guard)
    strikes: int = 0  # daemon deaths while it ran alone with its own work begun

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> JobRow:
        """A ``jobs`` row joined with its image id (``image_id``, NULL while there is none)."""
        return cls(
            id=row["id"],
            experiment_id=row["experiment_id"],
            idx=row["idx"],
            params=loads(row["params"]),
            status=row["status"],
            attempts=row["attempts"],
            last_error=row["last_error"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            image_id=row["image_id"],
            suspect=bool(row["suspect"]),
            strikes=row["strikes"],
        )

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class NewImage:
    """An image file already on disk (fsynced, renamed), about to be committed with its job's ``done``."""

    path: str  # relative to the images folder, "/"-separated
    sha256: str
    size_bytes: int
    seed: int
    params: dict[str, Any]
    metadata: dict[str, Any]
    wall_time_s: float
    peak_memory_bytes: int | None

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class ImageRow:
    id: int
    job_id: int
    experiment_id: int
    path: str
    sha256: str
    size_bytes: int
    seed: int
    params: dict[str, Any]
    metadata: dict[str, Any]
    wall_time_s: float
    peak_memory_bytes: int | None
    created_at: str
    # The gallery's marks (migration 0009_gallery); deleted_at set: in the trash, the file under <data_dir>/trash.
    favorite: bool = False
    rating: int | None = None
    deleted_at: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ImageRow:
        return cls(
            id=row["id"],
            job_id=row["job_id"],
            experiment_id=row["experiment_id"],
            path=row["path"],
            sha256=row["sha256"],
            size_bytes=row["size_bytes"],
            seed=row["seed"],
            params=loads(row["params"]),
            metadata=loads(row["metadata"]),
            wall_time_s=row["wall_time_s"],
            peak_memory_bytes=row["peak_memory_bytes"],
            created_at=row["created_at"],
            favorite=bool(row["favorite"]),
            rating=row["rating"],
            deleted_at=row["deleted_at"],
        )

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class PromptRow:
    """A prompt and negative prompt pair some experiment used: how often, and when last."""

    prompt: str
    negative_prompt: str
    uses: int
    last_used_at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> PromptRow:
        return cls(
            prompt=row["prompt"],
            negative_prompt=row["negative_prompt"],
            uses=row["uses"],
            last_used_at=row["last_used_at"],
        )

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class AnnotationRow:
    image_id: int
    plugin: str
    key: str
    value: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class TokenRow:
    """A client token. Only its hash is stored; the token itself is shown once, when it is issued."""

    id: int
    name: str
    token_hash: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> TokenRow:
        return cls(**{key: row[key] for key in row.keys()})  # noqa: SIM118 - sqlite3.Row is not a Mapping

    def to_dict(self) -> dict[str, Any]:
        # The hash stays in the store: nothing a client sees needs it.
        data = _as_dict(self)
        del data["token_hash"]
        return data
