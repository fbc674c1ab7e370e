"""The provider interface: what the engine needs from anything that makes images."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from cauldrond.params import GenerationParams


class GenerationInterrupted(Exception):
    """Raised inside ``Provider.generate`` when ``should_stop`` turned true between two denoising steps."""


class ProviderError(Exception):
    """A clear, user-facing failure (unknown model, refused checkpoint format, offline hub...)."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    provider: str
    source: str  # "diffusers-folder" | "single-file" | "hub"
    path: str | None = None
    note: str = ""
    # sha256 of the weights where the provider hashes them (models.list fills it; A1111's "Model hash" is [:10])
    sha256: str | None = None


@dataclass(frozen=True)
class SamplerInfo:
    name: str
    schedules: tuple[str, ...]
    note: str = ""


@dataclass
class GeneratedImage:
    """One finished image plus what reproduces it."""

    image: Image.Image
    params: GenerationParams  # seed is always resolved (never -1) here
    wall_time_s: float
    peak_memory_bytes: int | None
    info: dict[str, Any] = field(default_factory=dict)  # model hash, device, dtype, scheduler config, versions


# Called from the worker thread after each denoising step with (step, total_steps).
ProgressCallback = Callable[[int, int], None]
# Polled from the worker thread between steps; True means stop now.
StopCheck = Callable[[], bool]


@runtime_checkable
class StepLatents(Protocol):
    """Optional, like ``prepare``: the engine's progress callback also has this method, for live previews
    (engine/previews.py). A provider that can may call it right after ``progress(step, total)`` with that step's
    latents, a tensor of shape (rows, channels, h, w) holding the images at positions ``rows`` of the batch it
    was given, and the latent family ("sd1", "sdxl"; media/previews.py). It returns at once unless a frame is
    due and wanted, so passing the tensor costs nothing; it never raises."""

    def latents(self, step: int, total: int, latents: Any, rows: Sequence[int], family: str) -> None: ...


@runtime_checkable
class Provider(Protocol):
    """A generator of images. All methods except ``name`` may block and are called from the engine's
    worker thread, never from the event loop."""

    name: str

    # Optional, and so not a member of this protocol: ``prepare(model: str) -> None`` loads a model ahead of
    # ``generate``. The engine calls it before a crash-guard suspect's run, so that a death during the load (shared
    # by every job of that model) is not taken as evidence against the job. Without it, the evidence starts at the
    # first ``progress`` call instead.

    def list_models(self) -> list[ModelInfo]: ...

    def list_samplers(self) -> list[SamplerInfo]: ...

    def hardware_info(self) -> dict[str, Any]: ...

    def optimize_for_hardware(self) -> None:
        """Pick device, dtype and attention implementation for this machine. Called once at engine start."""

    def generate(
        self,
        batch: Sequence[GenerationParams],
        progress: ProgressCallback,
        should_stop: StopCheck,
    ) -> list[GeneratedImage]:
        """Generate one image per params, as one denoising batch where the params allow it.

        Every params in ``batch`` has a resolved seed. Raises ``GenerationInterrupted`` when
        ``should_stop`` returns True, ``ProviderError`` for a clear user-facing failure."""
        ...
