"""Batching that changes nothing but speed: per-image CFG, the prompt embedding cache, and out-of-memory splits.

On the tiny model at 64x64 in 3 steps on the CPU; out-of-memory errors are torch's real exception type, raised
by the run function or progress callback a test hands in (the CPU has no device memory to run out of)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from cauldrond.config import Settings
from cauldrond.params import GenerationParams
from cauldrond.providers.base import GeneratedImage, ProviderError
from cauldrond.providers.diffusers import devices
from cauldrond.providers.diffusers.embeddings import PromptEmbeddingCache
from cauldrond.providers.diffusers.oom import BatchLimit, SplitProgress, is_out_of_memory, run_adaptive
from cauldrond.providers.diffusers.provider import DiffusersProvider
from tests.providers.cpu_provider import new_cpu_provider

TOLERANCE = 2  # of 255
BASE = GenerationParams(prompt="a lighthouse at dusk", width=64, height=64, steps=3, seed=1, sampler="Euler a")
# Six cells mixing CFG 1, 3, 7 and 12 with different prompts, negatives and seeds.
MIXED = [
    BASE.model_copy(update={"cfg_scale": 1.0, "seed": 11}),
    BASE.model_copy(update={"cfg_scale": 3.0, "seed": 12, "prompt": "a red barn"}),
    BASE.model_copy(update={"cfg_scale": 7.0, "seed": 13, "negative_prompt": "blurry"}),
    BASE.model_copy(update={"cfg_scale": 12.0, "seed": 14}),
    BASE.model_copy(update={"cfg_scale": 7.0, "seed": 15, "prompt": "a red barn", "negative_prompt": "fog"}),
    BASE.model_copy(update={"cfg_scale": 1.0, "seed": 16, "prompt": "snow"}),
]


def _run(provider: DiffusersProvider, batch: Sequence[GenerationParams]) -> list[GeneratedImage]:
    return provider.generate(list(batch), lambda step, total: None, lambda: False)


def _pixels(result: GeneratedImage) -> np.ndarray:
    return np.asarray(result.image.convert("RGB"), dtype=np.int16)


def _diff(a: GeneratedImage, b: GeneratedImage) -> int:
    return int(np.abs(_pixels(a) - _pixels(b)).max())


# --- per-image CFG -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ 2M Karras", "DDIM"])
def test_a_mixed_cfg_batch_equals_each_cell_alone(provider: DiffusersProvider, sampler: str) -> None:
    cells = [cell.model_copy(update={"sampler": sampler, "eta": 0.5}) for cell in MIXED]
    batched = _run(provider, cells)
    alone = [_run(provider, [cell])[0] for cell in cells]
    diffs = [_diff(a, b) for a, b in zip(batched, alone, strict=True)]
    # Observed on the 2-core CPU: at most 1/255 (Euler a, DPM++ 2M Karras, DDIM, LMS, UniPC, Heun, SDE, PLMS).
    assert max(diffs) <= TOLERANCE, f"{sampler}: per-cell differences {diffs}"
    assert [r.params for r in batched] == cells and {r.info["batch_size"] for r in batched} == {6}
    # The CFG really differs per image: the same seed and prompt at CFG 1 and 12 give other pictures.
    low, high = _run(provider, [cells[3].model_copy(update={"cfg_scale": 1.0}), cells[3]])
    assert _diff(low, high) > 10


def test_pipelines_without_our_loop_run_one_call_per_cfg_value(provider: DiffusersProvider) -> None:
    provider.use_own_loop = False
    try:
        fallback = _run(provider, MIXED)
    finally:
        provider.use_own_loop = True
    ours = _run(provider, MIXED)
    assert [r.params for r in fallback] == MIXED
    assert [r.info["batch_size"] for r in fallback] == [2, 1, 2, 1, 2, 2]  # CFG 1, 3, 7, 12 groups
    assert max(_diff(a, b) for a, b in zip(fallback, ours, strict=True)) <= TOLERANCE


# --- the prompt embedding cache ------------------------------------------------------------------------------


def test_a_batch_sharing_one_prompt_encodes_it_once(models_dir: Path, tmp_path: Path) -> None:
    fresh = new_cpu_provider(models_dir, tmp_path)
    cells = [BASE.model_copy(update={"seed": seed, "cfg_scale": 2.0 + seed}) for seed in range(8)]
    _run(fresh, cells)
    cache = fresh.prompt_cache
    assert (cache.misses, cache.hits, len(cache)) == (1, 7, 1)
    _run(fresh, cells[:3])  # across batches too
    assert (cache.misses, cache.hits) == (1, 10)
    assert fresh.hardware_info()["prompt_cache"] == {"entries": 1, "hits": 10, "misses": 1}


def test_the_cache_keys_on_prompt_negative_and_clip_skip(provider: DiffusersProvider) -> None:
    pipe = provider._ensure_model("tiny-sd").pipeline
    cache = PromptEmbeddingCache()
    cond, uncond = cache.encode(pipe, "m", ["a cat"], [""], None)
    # Exactly what the pipeline computes for this prompt.
    with torch.no_grad():
        expected = pipe.encode_prompt("a cat", "cpu", 1, True, "", clip_skip=None)
    assert torch.equal(cond, expected[0]) and torch.equal(uncond, expected[1])

    skipped, _ = cache.encode(pipe, "m", ["a cat"], [""], 1)
    negated, other_uncond = cache.encode(pipe, "m", ["a cat"], ["dogs"], None)
    assert (cache.misses, cache.hits) == (3, 0) and len(cache) == 3
    assert not torch.equal(skipped, cond) and not torch.equal(other_uncond, uncond)
    assert torch.equal(negated, cond)  # the positive half does not depend on the negative prompt

    again, _ = cache.encode(pipe, "m", ["a cat", "a cat"], ["", ""], None)
    assert (cache.misses, cache.hits) == (3, 2) and torch.equal(again, torch.cat([cond, cond]))
    cache.encode(pipe, "another model", ["a cat"], [""], None)
    assert len(cache) == 1 and cache.misses == 4, "a new model empties the cache"


def test_the_cache_is_bounded_least_recently_used_first(provider: DiffusersProvider) -> None:
    pipe = provider._ensure_model("tiny-sd").pipeline
    cache = PromptEmbeddingCache(max_entries=2)
    for prompt in ("a", "b", "a", "c"):  # "a" was used after "b", so "b" goes
        cache.encode(pipe, "m", [prompt], [""], None)
    cache.encode(pipe, "m", ["a"], [""], None)
    assert (len(cache), cache.hits, cache.misses) == (2, 2, 3)
    cache.encode(pipe, "m", ["b"], [""], None)
    assert cache.misses == 4

    entry_bytes = cache.nbytes // len(cache)
    by_bytes = PromptEmbeddingCache(max_bytes=entry_bytes * 3 // 2)
    for prompt in ("a", "b", "c"):
        by_bytes.encode(pipe, "m", [prompt], [""], None)
    assert len(by_bytes) == 1 and by_bytes.nbytes == entry_bytes


# --- out-of-memory splits ------------------------------------------------------------------------------------


def _fits(largest: int, calls: list[int]) -> Callable[[Sequence[int]], list[str]]:
    def run_batch(chunk: Sequence[int]) -> list[str]:
        calls.append(len(chunk))
        if len(chunk) > largest:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {len(chunk)} GiB")
        return [f"image {item}" for item in chunk]

    return run_batch


def test_out_of_memory_halves_until_it_fits_and_remembers_the_size() -> None:
    limit, calls = BatchLimit(), list[int]()
    results = run_adaptive(list(range(10)), _fits(3, calls), limit, pixels=64 * 64)
    assert results == [f"image {item}" for item in range(10)]  # each cell once, in order
    assert calls == [10, 5, 3, 2, 3, 2]  # the waiting half was re-cut once 5 proved too many
    assert (limit.size, limit.pixels) == (3, 64 * 64)

    calls.clear()
    assert run_adaptive(list(range(7)), _fits(3, calls), limit, pixels=64 * 64) == [f"image {i}" for i in range(7)]
    assert calls == [3, 3, 1], "later batches are split up front"
    assert limit.allowed(32 * 32) == 12 and limit.allowed(128 * 128) == 1  # scaled by image area


def test_out_of_memory_at_one_image_is_a_provider_error() -> None:
    calls: list[int] = []
    with pytest.raises(ProviderError, match="out of memory generating a single image"):
        run_adaptive([1, 2, 3], _fits(0, calls), BatchLimit())
    assert calls == [3, 2, 1]


def test_only_memory_errors_are_retried() -> None:
    calls: list[int] = []

    def broken(chunk: Sequence[int]) -> list[int]:
        calls.append(len(chunk))
        raise RuntimeError("expected all tensors to be on the same device")

    with pytest.raises(RuntimeError, match="same device"):
        run_adaptive([1, 2, 3, 4], broken, BatchLimit())
    assert calls == [4]
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB)"))
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_split_progress_climbs_once_over_all_sub_batches() -> None:
    seen: list[tuple[int, int]] = []
    whole = SplitProgress(lambda s, t: seen.append((s, t)), 1)
    for step in (1, 2, 3):
        whole.chunk(1)(step, 3)
    assert seen == [(1, 3), (2, 3), (3, 3)]  # an unsplit batch reports every step as before

    seen.clear()
    split = SplitProgress(lambda s, t: seen.append((s, t)), 5)
    lost = split.chunk(4)
    lost(1, 4)
    lost(2, 4)  # this sub-batch then runs out of memory: its progress is not reported again
    for size in (2, 2, 1):
        report = split.chunk(size)
        for step in (1, 2, 3, 4):
            report(step, 4)
        split.finished(size)
    steps = [step for step, _ in seen]
    assert steps == sorted(set(steps)) and seen[-1] == (4, 4)


def test_the_provider_splits_a_batch_that_runs_out_of_memory(models_dir: Path, tmp_path: Path) -> None:
    fresh = new_cpu_provider(models_dir, tmp_path)
    expected = _run(fresh, MIXED[:4])
    seen: list[tuple[int, int]] = []

    def progress(step: int, total: int) -> None:
        seen.append((step, total))
        if len(seen) == 1:  # the first step of the full batch does not fit
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    results = fresh.generate(MIXED[:4], progress, lambda: False)
    assert [r.params for r in results] == MIXED[:4]
    assert [r.info["batch_size"] for r in results] == [2, 2, 2, 2]
    assert max(_diff(a, b) for a, b in zip(results, expected, strict=True)) <= TOLERANCE
    assert fresh.batch_limit.size == 2 and fresh.hardware_info()["batch_limit"] == 2
    assert seen == [(1, 3), (2, 3), (3, 3)]  # monotonic over the retried halves

    again = _run(fresh, MIXED[:3])  # split up front now
    assert [r.info["batch_size"] for r in again] == [2, 2, 1]


def test_the_provider_gives_up_at_one_image(models_dir: Path, tmp_path: Path) -> None:
    fresh = new_cpu_provider(models_dir, tmp_path)

    def never_fits(step: int, total: int) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(ProviderError, match="out of memory generating a single image"):
        fresh.generate(MIXED[:1], never_fits, lambda: False)
    assert len(_run(fresh, MIXED[:2])) == 2, "the provider stays usable"


# --- on a GPU --------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not devices.cuda_available(), reason="needs a CUDA device")
def test_cuda_batches_mixed_cfg_and_splits_on_real_out_of_memory(models_dir: Path, tmp_path: Path) -> None:
    gpu = DiffusersProvider(Settings(data_dir=tmp_path, models_dir=models_dir, device="cuda"))  # type: ignore[arg-type]
    gpu.optimize_for_hardware()
    cells = [cell.model_copy(update={"width": 256, "height": 256}) for cell in MIXED]
    batched = _run(gpu, cells)
    alone = [_run(gpu, [cell])[0] for cell in cells]
    assert max(_diff(a, b) for a, b in zip(batched, alone, strict=True)) <= 3  # float16

    # Cap this process's CUDA memory just above what one large image needs, so a batch of six cannot fit.
    large = [cell.model_copy(update={"width": 1024, "height": 1024, "steps": 2}) for cell in MIXED]
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    _run(gpu, large[:1])
    one = torch.cuda.max_memory_allocated()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(min(1.0, one * 2.5 / total))
    try:
        results = _run(gpu, large)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert [r.params for r in results] == large
    assert gpu.batch_limit.size is not None and gpu.batch_limit.size < len(large)
