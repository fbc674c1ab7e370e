"""Which queued jobs may share one denoising call."""

from __future__ import annotations

from collections.abc import Hashable

from cauldrond.queue.job_queue import QueuedJob

# The fields a batch must share: everything the provider applies to the whole batch rather than per image.
BATCH_FIELDS = ("model", "sampler", "schedule", "steps", "width", "height", "clip_skip", "cfg_scale", "eta")


def batch_key(job: QueuedJob) -> Hashable:
    return tuple(job.params.get(name) for name in BATCH_FIELDS)
