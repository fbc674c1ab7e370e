"""The worker thread's file side of a batch: each generated image becomes a PNG file written atomically.

Blocking I/O only, no store access: the engine commits the rows afterwards on the event loop. If any write
fails, the files this batch already wrote are removed before the error goes on, since no row will ever point
at them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cauldrond.engine.storage import remove_files
from cauldrond.media.png import png_text_chunks, write_png_atomic
from cauldrond.providers.base import GeneratedImage
from cauldrond.queue import QueuedJob
from cauldrond.store import NewImage


@dataclass
class Written:
    job: QueuedJob
    image: NewImage


def write_images(images_dir: Path, batch: Sequence[QueuedJob], images: Sequence[GeneratedImage]) -> list[Written]:
    """One file per job (``exp-<id>/<idx>-<seed>.png``), with its row ready to commit."""
    written: list[Written] = []
    try:
        for job, generated in zip(batch, images, strict=True):
            written.append(_write_one(images_dir, job, generated))
    except BaseException:
        remove_files(images_dir / item.image.path for item in written)
        raise
    return written


def _write_one(images_dir: Path, job: QueuedJob, generated: GeneratedImage) -> Written:
    used = generated.params.to_json_dict()
    folder = images_dir / f"exp-{job.experiment_id:06d}"
    folder.mkdir(parents=True, exist_ok=True)
    file = write_png_atomic(
        generated.image,
        folder,
        f"{job.idx:05d}-{generated.params.seed}.png",
        png_text_chunks(used, generated.info),
    )
    image = NewImage(
        path=file.path.relative_to(images_dir).as_posix(),
        sha256=file.sha256,
        size_bytes=file.size_bytes,
        seed=generated.params.seed,
        params=used,
        metadata=generated.info,
        wall_time_s=generated.wall_time_s,
        peak_memory_bytes=generated.peak_memory_bytes,
    )
    return Written(job, image)
