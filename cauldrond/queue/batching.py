"""Which queued jobs may share one denoising call."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from cauldrond.queue.job_queue import QueuedJob

# The fields a batch must share: everything the provider applies to the whole batch rather than per image.
# Prompts, negative prompts, seeds and CFG scales may differ inside a batch.
BATCH_FIELDS = ("model", "sampler", "schedule", "steps", "width", "height", "clip_skip", "eta")


def cell_batch_key(params: Mapping[str, Any]) -> Hashable:
    return tuple(params.get(name) for name in BATCH_FIELDS)


def batch_key(job: QueuedJob) -> Hashable:
    return cell_batch_key(job.params)
