"""Persistence: the SQLite store (the truth about experiments, jobs and images), its migrations and start-up
recovery."""

from cauldrond.store.database import StoreError
from cauldrond.store.migrations import MIGRATIONS, MigrationError, apply_migrations
from cauldrond.store.recovery import RecoveryReport, recover
from cauldrond.store.rows import (
    JOB_STATUSES,
    AnnotationRow,
    ExperimentRow,
    ImageRow,
    JobRow,
    NewImage,
    PromptRow,
    QueuedJobRow,
    TokenRow,
)
from cauldrond.store.store import Store
from cauldrond.store.timestamps import utc_now

__all__ = [
    "JOB_STATUSES",
    "MIGRATIONS",
    "AnnotationRow",
    "ExperimentRow",
    "ImageRow",
    "JobRow",
    "MigrationError",
    "NewImage",
    "PromptRow",
    "QueuedJobRow",
    "RecoveryReport",
    "Store",
    "StoreError",
    "TokenRow",
    "apply_migrations",
    "recover",
    "utc_now",
]
