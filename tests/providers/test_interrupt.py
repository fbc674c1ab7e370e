"""A stop inside a denoising step ends it at the next UNet block, not at the step's end (issue 9, item 6).

Counted, not timed: the test's own forward hooks on the real tiny UNet's resnet blocks record which blocks
finish after the stop flag was set.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from diffusers.models.resnet import ResnetBlock2D

from cauldrond.params import GenerationParams
from cauldrond.providers.base import GenerationInterrupted
from cauldrond.providers.diffusers.provider import DiffusersProvider

# Larger than the other tests' 64 px so a step is a real amount of work; still fast on the tiny model.
LARGE = GenerationParams(prompt="a lighthouse", width=256, height=256, steps=2, seed=7, cfg_scale=7.0, sampler="Euler")


def _unet(provider: DiffusersProvider) -> Any:
    # Load the model with a small run so its modules exist before the test hooks them.
    provider.generate([LARGE.model_copy(update={"width": 64, "height": 64, "steps": 1})], _ignore, _never)
    assert provider._loaded is not None
    return provider._loaded.pipeline.unet


def _ignore(step: int, total: int) -> None:
    pass


def _never() -> bool:
    return False


def test_a_stop_during_a_step_ends_it_at_the_next_block(provider: DiffusersProvider) -> None:
    unet = _unet(provider)
    resnets = [module for module in unet.modules() if isinstance(module, ResnetBlock2D)]
    assert len(resnets) >= 4, "the tiny UNet has several resnet blocks per step"
    stop = threading.Event()
    finished_after_stop: list[Any] = []
    steps_done: list[int] = []

    def count(module: Any, args: Any, output: Any) -> None:
        if stop.is_set():
            finished_after_stop.append(module)

    def trip(module: Any, args: Any, output: Any) -> None:
        stop.set()  # as a cancel would, from another thread, halfway into the first step

    handles = [block.register_forward_hook(count) for block in resnets]
    handles.append(resnets[0].register_forward_hook(trip))
    try:
        with pytest.raises(GenerationInterrupted):
            provider.generate([LARGE], lambda step, total: steps_done.append(step), stop.is_set)
    finally:
        for handle in handles:
            handle.remove()
    assert steps_done == [], "the first step never completed"
    # Without the block checks the rest of the step (every other resnet, twice with CFG) would have run.
    assert finished_after_stop == []
    # The provider's own hooks are gone: outside a run the model is untouched.
    assert all(not module._forward_pre_hooks for module in unet.modules())


def test_without_a_stop_every_block_runs(provider: DiffusersProvider) -> None:
    """The control for the test above: the same count over an uninterrupted step finds every block."""
    unet = _unet(provider)
    resnets = [module for module in unet.modules() if isinstance(module, ResnetBlock2D)]
    calls: list[Any] = []
    handles = [block.register_forward_hook(lambda m, a, o: calls.append(m)) for block in resnets]
    try:
        provider.generate([LARGE.model_copy(update={"steps": 1})], _ignore, _never)
    finally:
        for handle in handles:
            handle.remove()
    assert len(calls) == len(resnets)  # one UNet call per step: CFG runs as one doubled batch
