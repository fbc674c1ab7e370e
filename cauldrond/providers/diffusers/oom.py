"""Adaptive batch size: split a batch that runs out of accelerator memory, and remember what fit.

A sweep is queued with a batch size chosen for speed, not for the card it lands on. When a denoising batch
does not fit, the batch is halved and the halves retried, down to one image; the largest size that then
worked is remembered so later batches are split before they start instead of failing first.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

from cauldrond.providers.base import ProgressCallback, ProviderError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# Allocation failures that do not come as torch.OutOfMemoryError: kernels that allocate their own workspace
# (cuBLAS, cuDNN) and, in some torch builds, the MPS allocator raise a plain RuntimeError.
_OOM_MARKERS = ("out of memory", "cublas_status_alloc_failed", "cudnn_status_not_enough_memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an accelerator allocation failure (CUDA or MPS), whatever type torch gave it."""
    if isinstance(exc, torch.OutOfMemoryError):  # torch.cuda.OutOfMemoryError is the same class
        return True
    return isinstance(exc, RuntimeError) and any(marker in str(exc).lower() for marker in _OOM_MARKERS)


def free_memory() -> None:
    """Give cached accelerator memory back so a smaller retry can allocate it."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    backend = getattr(torch.backends, "mps", None)
    if backend is not None and backend.is_available():
        torch.mps.empty_cache()


@dataclass
class BatchLimit:
    """The largest batch known to fit, or None while nothing has run out of memory.

    Memory grows with the latent area of the whole batch, so the size is remembered together with the image
    area it was learned at and scaled for other sizes: what fit at 1024x1024 does not hold 512x512 batches to
    the same count. The scaled figure is only a first guess; a wrong one just splits again."""

    size: int | None = None
    pixels: int = 0  # width * height of the images the size was learned at

    def allowed(self, pixels: int) -> int | None:
        if self.size is None:
            return None
        return max(1, self.size * self.pixels // max(1, pixels))

    def learn(self, size: int, pixels: int) -> None:
        self.size, self.pixels = size, pixels

    def reset(self) -> None:
        self.size, self.pixels = None, 0


def run_adaptive(
    items: Sequence[T],
    run_batch: Callable[[Sequence[T]], list[R]],
    limit: BatchLimit,
    *,
    pixels: int = 1,
) -> list[R]:
    """``run_batch`` over ``items`` in chunks that fit: one result per item, in input order.

    Chunks start at ``limit``'s allowed size (all items when unlimited). A chunk that runs out of memory is
    halved and both halves retried, and the limit shrinks to the half's size, so the limit ends as the
    largest size that worked. Any other exception, including GenerationInterrupted, propagates at once. An
    out-of-memory error at a single item is raised as ProviderError."""
    if not items:
        return []
    pending = _split([items], limit.allowed(pixels) or len(items))
    results: list[R] = []
    while pending:
        chunk = pending.pop(0)
        failure: BaseException | None = None
        try:
            out = run_batch(chunk)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            failure = exc
        if failure is None:
            if len(out) != len(chunk):
                raise RuntimeError(f"a batch of {len(chunk)} gave {len(out)} results")
            results.extend(out)
            continue
        # Out of the except block, so the traceback (and the tensors its frames hold) is gone before freeing.
        message = str(failure)
        del failure
        free_memory()
        if len(chunk) == 1:
            raise ProviderError(
                "out of memory generating a single image at this size; lower the width/height or free memory "
                f"on the device ({message.splitlines()[0] if message else 'no details'})"
            )
        half = (len(chunk) + 1) // 2
        limit.learn(half, pixels)
        log.warning("out of memory at batch size %d; retrying as batches of at most %d", len(chunk), half)
        # Chunks still waiting were cut for the old limit; they would only fail the same way.
        pending = _split([chunk, *pending], half)
    return results


def _split(chunks: list[Sequence[T]], size: int) -> list[Sequence[T]]:
    return [chunk[start : start + size] for chunk in chunks for start in range(0, len(chunk), size)]


class SplitProgress:
    """One batch's progress as the engine expects it, while the batch runs as several denoising calls.

    The engine shows ``(step, total)`` for the whole batch. Every sub-batch reports its own steps; this
    converts them to the share of all images' steps that is done, on the scale of one run's ``total``, and
    reports only when that grows. So an unsplit batch reports exactly (1, total) ... (total, total), a split
    one climbs once from 1 to total, and progress lost to a sub-batch that ran out of memory is never
    reported twice (the retry catches up before the count moves again)."""

    def __init__(self, progress: ProgressCallback, count: int) -> None:
        self._progress = progress
        self._count = count
        self._finished = 0
        self._reported = 0

    def chunk(self, size: int) -> ProgressCallback:
        """The callback for a sub-batch of ``size`` images about to run."""

        def report(step: int, total: int) -> None:
            done = (self._finished * total + size * step) // self._count
            if done > self._reported:
                self._reported = done
                self._progress(done, total)

        return report

    def finished(self, size: int) -> None:
        """A sub-batch of ``size`` images completed."""
        self._finished += size
