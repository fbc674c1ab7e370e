"""Stop inside a denoising step, not only between steps.

On a CPU one step of a large image takes minutes, and a stop that waits for the step's end waits that long.
While a batch runs, a forward pre-hook on each sub-block of the UNet and of the VAE decoder (resnets,
transformer blocks, up/down samplers, mid blocks) checks the stop flag and raises ``GenerationInterrupted``:
cancel and shutdown then act within one sub-block's time. The bound that remains is a single attention layer,
which torch cannot split; at the sizes the params allow that is seconds on a GPU and, for the largest images
on a CPU, can still be long (see docs/architecture.md).

The hooks are removed when the batch ends, so the pipeline outside a run is the untouched diffusers model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from cauldrond.providers.base import GenerationInterrupted, StopCheck

# diffusers' building blocks: each is a unit of work the stop check may end a step between.
BLOCK_CLASSES = frozenset(
    {
        "ResnetBlock2D",
        "BasicTransformerBlock",
        "Downsample2D",
        "Upsample2D",
        "UNetMidBlock2D",
        "UNetMidBlock2DCrossAttn",
    }
)


def block_modules(module: Any) -> list[Any]:
    """The sub-blocks of ``module`` (a UNet or a VAE) at which a step can stop, in definition order."""
    if module is None or not hasattr(module, "modules"):
        return []
    return [sub for sub in module.modules() if type(sub).__name__ in BLOCK_CLASSES]


@contextlib.contextmanager
def stop_between_blocks(pipeline: Any, should_stop: StopCheck) -> Iterator[int]:
    """While inside, every UNet and VAE sub-block first checks ``should_stop``; yields the number of blocks
    watched. The hooks go when the block exits, whatever happened."""

    def check(module: Any, args: Any) -> None:
        if should_stop():
            raise GenerationInterrupted(f"stopped inside a step, before a {type(module).__name__}")

    handles = []
    try:
        for component in (getattr(pipeline, "unet", None), getattr(pipeline, "vae", None)):
            for block in block_modules(component):
                handles.append(block.register_forward_pre_hook(check))
        yield len(handles)
    finally:
        for handle in handles:
            handle.remove()
