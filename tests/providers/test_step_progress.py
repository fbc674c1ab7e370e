"""Progress counts denoising steps as the user set them, on the tiny model: an 8-step Heun run reports 8/8, not the
15 model evaluations diffusers loops over."""

from __future__ import annotations

import pytest

from cauldrond.params import GenerationParams
from cauldrond.providers.base import GenerationInterrupted
from cauldrond.providers.diffusers.provider import DiffusersProvider

STEPS = 4
CELL = GenerationParams(prompt="a lighthouse at dusk", width=64, height=64, steps=STEPS, seed=3, sampler="Heun")
# Heun, DPM2 and DPM++ SDE evaluate the model twice per step (2 * steps - 1 loop iterations); PLMS runs
# steps + 1; Euler one per step. Each must report 1..STEPS.
SAMPLERS = ["Heun", "DPM2", "DPM++ SDE", "PLMS", "Euler"]


def _progress(provider: DiffusersProvider, params: GenerationParams, *, own_loop: bool) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []
    provider.use_own_loop = own_loop
    try:
        provider.generate([params], lambda step, total: calls.append((step, total)), lambda: False)
    finally:
        provider.use_own_loop = True
    return calls


@pytest.mark.parametrize("own_loop", [True, False], ids=["own loop", "pipeline call"])
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_progress_ends_at_the_steps_asked_for(provider: DiffusersProvider, sampler: str, own_loop: bool) -> None:
    calls = _progress(provider, CELL.model_copy(update={"sampler": sampler}), own_loop=own_loop)
    assert calls == [(step, STEPS) for step in range(1, STEPS + 1)]


def test_an_eight_step_heun_run_reports_eight_of_eight(provider: DiffusersProvider) -> None:
    # The case: `step 12/15` was shown for an 8-step Heun run.
    calls = _progress(provider, CELL.model_copy(update={"steps": 8}), own_loop=True)
    assert calls == [(step, 8) for step in range(1, 9)]


def test_a_batch_split_by_cfg_still_counts_steps(provider: DiffusersProvider) -> None:
    # The pipeline call takes one CFG, so a mixed batch runs as two calls; the batch reports one climb to STEPS.
    batch = [CELL, CELL.model_copy(update={"cfg_scale": 3.0, "seed": 4})]
    calls: list[tuple[int, int]] = []
    provider.use_own_loop = False
    try:
        provider.generate(batch, lambda step, total: calls.append((step, total)), lambda: False)
    finally:
        provider.use_own_loop = True
    assert calls[-1] == (STEPS, STEPS) and all(total == STEPS and step <= STEPS for step, total in calls)
    assert [step for step, _ in calls] == sorted(set(step for step, _ in calls))


@pytest.mark.parametrize("own_loop", [True, False], ids=["own loop", "pipeline call"])
def test_a_stop_names_the_users_step(provider: DiffusersProvider, own_loop: bool) -> None:
    calls: list[tuple[int, int]] = []
    provider.use_own_loop = own_loop
    try:
        with pytest.raises(GenerationInterrupted, match=r"after step 2$"):
            provider.generate([CELL], lambda step, total: calls.append((step, total)), lambda: len(calls) == 2)
    finally:
        provider.use_own_loop = True
    assert calls == [(1, STEPS), (2, STEPS)]
