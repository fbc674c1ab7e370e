"""The one timestamp format the store writes: ISO-8601 UTC with milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
