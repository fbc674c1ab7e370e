"""Rows the store hands out: plain frozen dataclasses with JSON columns already decoded.

``to_dict()`` gives only str/int/float/bool/None/list/dict values: a row goes straight into msgpack or JSON.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

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

    def to_dict(self) -> dict[str, Any]:
        # The hash stays in the store: nothing a client sees needs it.
        data = _as_dict(self)
        del data["token_hash"]
        return data
