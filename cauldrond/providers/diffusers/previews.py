"""The diffusers provider's side of live step previews: which latent family a pipeline has, and the per-chunk
callback that hands each step's latents to the engine (providers.base.StepLatents; engine/previews.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cauldrond.providers.base import ProgressCallback, StepLatents

# Called by the denoising loop after a user step with (step, total, latents of the chunk).
ChunkLatents = Callable[[int, int, Any], None]


def latent_family(pipeline: Any) -> str:
    """The latent family: sdxl for SDXL pipelines (their own VAE, so their own factors), else sd1 (SD 1.x, 2.x)."""
    return "sdxl" if "XL" in type(pipeline).__name__ else "sd1"


def chunk_latents(progress: ProgressCallback, pipeline: Any, rows: Sequence[int]) -> ChunkLatents | None:
    """The callback for one denoising chunk whose images sit at ``rows`` of the batch; None when the engine's
    progress callback takes no latents (a plain function: tests, other callers)."""
    if not isinstance(progress, StepLatents):
        return None
    sink, family, positions = progress, latent_family(pipeline), list(rows)

    def report(step: int, total: int, latents: Any) -> None:
        sink.latents(step, total, latents, positions, family)

    return report
