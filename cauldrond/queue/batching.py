"""Which queued jobs may share one denoising call."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from cauldrond.params import batch_key_fields
from cauldrond.queue.job_queue import QueuedJob


def cell_batch_key(params: Mapping[str, Any]) -> Hashable:
    """The values a batch must share: every params field not marked per image (params.py's ``Batching``).
    Fields shared only where the sampler uses them (eta) are in the key too: the queue cannot see the sampler's
    scheduler, and a key too fine only costs batching where one too coarse would hand the provider a batch it
    refuses."""
    return tuple(_hashable(params.get(name)) for name in batch_key_fields())


def _hashable(value: Any) -> Hashable:
    # Stored params are JSON: a LoRA set arrives as a list of {name, weight} objects.
    if isinstance(value, list | tuple):
        return tuple(_hashable(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, _hashable(item)) for key, item in value.items()))
    return value  # type: ignore[no-any-return]


def batch_key(job: QueuedJob) -> Hashable:
    return cell_batch_key(job.params)
