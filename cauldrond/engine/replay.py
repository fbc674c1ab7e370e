"""Exact re-runs: an image made in a batch is re-made in a batch of the same shape.

Float results on a CPU depend, by rounding, on the shape of the tensors they are computed in: the same seed
denoised alone and in a batch of four can differ by one level in a few pixels. The values of the other images
in the batch do not matter (no computation mixes samples), only the batch's size, the image's position in it,
and whether the UNet ran the unconditional half (CFG). So ``images.rerun`` records that shape in its job, and
the engine pads the job to it with placeholder copies of the image's own params, whose results it discards.

The shape travels in the job's params under ``REPLAY_KEY`` (validated here, stripped before the params are
used), so it survives restarts, queue rebuilds and retries like the rest of the job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from cauldrond.params import GenerationParams
from cauldrond.queue import QueuedJob

REPLAY_KEY = "replay_batch"
# The CFG scale of placeholders when the original batch ran guided but the image itself had scale 1: any scale
# but 1 makes the UNet run the unconditional half, as it did for the original batch.
GUIDED_PLACEHOLDER_CFG = 2.0

T = TypeVar("T")


@dataclass(frozen=True)
class BatchShape:
    size: int
    index: int
    guided: bool

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "index": self.index, "guided": self.guided}


def shape_from_metadata(metadata: Mapping[str, Any]) -> BatchShape | None:
    """The batch shape an image's provider info records, or None (older images, batches of one)."""
    return _shape(
        {
            "size": metadata.get("batch_size"),
            "index": metadata.get("batch_index"),
            "guided": metadata.get("batch_guided"),
        }
    )


def _shape(value: Any) -> BatchShape | None:
    if not isinstance(value, Mapping):
        return None
    size, index, guided = value.get("size"), value.get("index"), value.get("guided")
    if not (isinstance(size, int) and isinstance(index, int) and isinstance(guided, bool)):
        return None
    if size < 2 or not 0 <= index < size:
        return None
    return BatchShape(size, index, guided)


def without_replay(params: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if key != REPLAY_KEY}


def replay_of(batch: Sequence[QueuedJob]) -> BatchShape | None:
    """A re-run job runs alone; its recorded shape, if it has one."""
    if len(batch) != 1:
        return None
    return _shape(batch[0].params.get(REPLAY_KEY))


def padded(params: GenerationParams, shape: BatchShape) -> list[GenerationParams]:
    """``params`` at ``shape.index`` among placeholders that give the batch the recorded shape."""
    cfg = params.cfg_scale
    if shape.guided and cfg == 1.0:
        cfg = GUIDED_PLACEHOLDER_CFG
    elif not shape.guided:
        cfg = 1.0
    placeholder = params.model_copy(update={"cfg_scale": cfg})
    return [params if position == shape.index else placeholder for position in range(shape.size)]


def picked(results: list[T], shape: BatchShape | None) -> list[T]:
    """The re-run image's result; the placeholders' are dropped."""
    return results if shape is None else [results[shape.index]]
