"""The in-memory job queue: an index over the store's queued jobs, rebuilt from SQLite at start."""

from cauldrond.queue.job_queue import JobQueue, QueuedJob, queued_job

__all__ = ["JobQueue", "QueuedJob", "queued_job"]
