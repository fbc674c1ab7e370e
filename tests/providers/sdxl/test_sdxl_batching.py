"""SDXL through the project's own denoising loop: per-image CFG with both text encoders, pooled embeddings and time
ids, the prompt cache, and agreement with diffusers' own StableDiffusionXLPipeline.__call__ (the reference).

On tiny-sdxl at 64x64 in 2-3 steps on the CPU."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from cauldrond.params import GenerationParams
from cauldrond.providers.base import GeneratedImage
from cauldrond.providers.diffusers import denoise
from cauldrond.providers.diffusers.provider import DiffusersProvider
from tests.providers.cpu_provider import new_cpu_provider

TOLERANCE = 2  # of 255
BASE = GenerationParams(
    model="tiny-sdxl", prompt="a lighthouse at dusk", width=64, height=64, steps=3, seed=1, sampler="Euler a"
)
MIXED = [
    BASE.model_copy(update={"cfg_scale": 1.0, "seed": 21}),
    BASE.model_copy(update={"cfg_scale": 4.0, "seed": 22, "prompt": "a red barn"}),
    BASE.model_copy(update={"cfg_scale": 9.0, "seed": 23, "negative_prompt": "blurry"}),
    BASE.model_copy(update={"cfg_scale": 9.0, "seed": 24, "prompt": "a red barn", "negative_prompt": "fog"}),
]


@pytest.fixture(scope="module")
def sdxl_provider(sdxl_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> DiffusersProvider:
    return new_cpu_provider(sdxl_models_dir, tmp_path_factory.mktemp("data"))


def _run(provider: DiffusersProvider, batch: Sequence[GenerationParams]) -> list[GeneratedImage]:
    return provider.generate(list(batch), lambda step, total: None, lambda: False)


def _diff(a: GeneratedImage, b: GeneratedImage) -> int:
    pixels = [np.asarray(r.image.convert("RGB"), dtype=np.int16) for r in (a, b)]
    return int(np.abs(pixels[0] - pixels[1]).max())


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ 2M Karras"])
def test_a_mixed_sdxl_batch_equals_each_cell_alone(sdxl_provider: DiffusersProvider, sampler: str) -> None:
    cells = [cell.model_copy(update={"sampler": sampler}) for cell in MIXED]
    batched = _run(sdxl_provider, cells)
    assert sdxl_provider._loaded is not None and denoise.supports(sdxl_provider._loaded.pipeline)
    alone = [_run(sdxl_provider, [cell])[0] for cell in cells]
    diffs = [_diff(a, b) for a, b in zip(batched, alone, strict=True)]
    assert max(diffs) <= TOLERANCE, f"{sampler}: per-cell differences {diffs}"
    # One denoising call for the four cells, CFG values mixed: no fallback to one call per CFG value.
    assert [r.info["batch_size"] for r in batched] == [4] * 4
    assert [r.params for r in batched] == cells


def test_our_sdxl_loop_matches_the_diffusers_pipeline_call(sdxl_provider: DiffusersProvider) -> None:
    # The reference: StableDiffusionXLPipeline.__call__ itself, one call per CFG value (the provider's fallback).
    cells = [MIXED[1], MIXED[2], MIXED[2].model_copy(update={"cfg_scale": 4.0, "seed": 25})]
    sdxl_provider.use_own_loop = False
    try:
        reference = _run(sdxl_provider, cells)
    finally:
        sdxl_provider.use_own_loop = True
    assert [r.info["batch_size"] for r in reference] == [2, 1, 2]  # __call__ groups by CFG value
    ours = _run(sdxl_provider, cells)
    assert [r.info["batch_size"] for r in ours] == [3] * 3
    assert max(_diff(a, b) for a, b in zip(reference, ours, strict=True)) <= TOLERANCE


def test_sdxl_prompts_cfg_and_negative_change_the_image(sdxl_provider: DiffusersProvider) -> None:
    cell = BASE.model_copy(update={"cfg_scale": 7.0, "seed": 5, "steps": 2})
    variants = [
        cell,
        cell.model_copy(update={"cfg_scale": 1.0}),
        cell.model_copy(update={"prompt": "snow"}),
        cell.model_copy(update={"negative_prompt": "dark"}),
    ]
    images = _run(sdxl_provider, variants)
    for other in images[1:]:
        assert _diff(images[0], other) > 3


def test_sdxl_prompt_cache_encodes_each_prompt_once(sdxl_models_dir: Path, tmp_path: Path) -> None:
    fresh = new_cpu_provider(sdxl_models_dir, tmp_path)
    cells = [BASE.model_copy(update={"steps": 2, "seed": seed, "cfg_scale": 2.0 + seed}) for seed in range(3)]
    _run(fresh, cells)
    _run(fresh, cells[:2])
    assert fresh.hardware_info()["prompt_cache"] == {"entries": 1, "hits": 4, "misses": 1}
    # Each entry holds SDXL's four tensors: both prompts' concatenated hidden states and pooled embeddings.
    entry = next(iter(fresh.prompt_cache._entries.values()))
    assert [tuple(t.shape) for t in entry] == [(1, 77, 80), (1, 77, 80), (1, 32), (1, 32)]
