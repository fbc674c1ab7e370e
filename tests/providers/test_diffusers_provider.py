"""The diffusers provider end to end on the tiny random-weight SD model: 64x64 images in 2-3 steps on the CPU."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cauldrond.config import Settings
from cauldrond.models import create_tiny_model, export_single_file
from cauldrond.params import GenerationParams
from cauldrond.plugins.manager import get_plugin_manager
from cauldrond.providers.base import GeneratedImage, GenerationInterrupted, Provider, ProviderError
from cauldrond.providers.diffusers import devices
from cauldrond.providers.diffusers.provider import DiffusersProvider
from cauldrond.providers.diffusers.samplers import list_samplers
from cauldrond.providers.registry import ProviderRegistry

FAST = GenerationParams(prompt="a lighthouse at dusk", width=64, height=64, steps=2, seed=42, sampler="Euler")
COMBINATIONS = [(info.name, schedule) for info in list_samplers() for schedule in info.schedules]
GPU_DEVICE = "cuda" if devices.cuda_available() else "mps" if devices.mps_available() else None


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("provider-models")
    tiny = create_tiny_model(folder)
    single = export_single_file(tiny, folder / "tiny-single.safetensors")
    # The same weights as a torch pickle, with a sidecar so it loads offline when pickles are allowed.
    torch.save(load_file(str(single)), folder / "tiny-pickle.ckpt")
    (folder / "tiny-pickle.config").write_text("tiny-sd", encoding="utf-8")
    # A pickle posing as safetensors.
    torch.save({"state_dict": {}}, folder / "impostor.safetensors")
    return folder


def _settings(models: Path, tmp_path: Path, **overrides: object) -> Settings:
    return Settings(data_dir=tmp_path, models_dir=models, device="cpu", **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def provider(models: Path, tmp_path_factory: pytest.TempPathFactory) -> DiffusersProvider:
    """One provider for the module, so the pipeline loads once."""
    shared = DiffusersProvider(_settings(models, tmp_path_factory.mktemp("data")))
    shared.optimize_for_hardware()
    return shared


def _run(provider: DiffusersProvider, *batch: GenerationParams) -> list[GeneratedImage]:
    return provider.generate(list(batch), lambda step, total: None, lambda: False)


def _pixels(result: GeneratedImage) -> np.ndarray:
    return np.asarray(result.image.convert("RGB"), dtype=np.int16)


def _max_diff(a: GeneratedImage, b: GeneratedImage) -> int:
    return int(np.abs(_pixels(a) - _pixels(b)).max())


@pytest.mark.parametrize(("sampler", "schedule"), COMBINATIONS)
def test_every_sampler_and_schedule_generates(provider: DiffusersProvider, sampler: str, schedule: str) -> None:
    (result,) = _run(provider, FAST.model_copy(update={"sampler": sampler, "schedule": schedule}))
    assert result.image.size == (64, 64)
    assert _pixels(result).std() > 1, "a flat image means the pipeline produced NaNs or nothing"
    assert result.info["sampler"] == sampler and result.info["schedule"] == schedule
    assert provider.load_count == 1


def test_info_describes_how_the_image_was_made(provider: DiffusersProvider) -> None:
    (result,) = _run(provider, FAST.model_copy(update={"sampler": "DPM++ 2M Karras"}))
    info = result.info
    assert (info["model"], info["sampler"], info["schedule"]) == ("tiny-sd", "DPM++ 2M", "Karras")
    assert info["scheduler"] == "DPMSolverMultistepScheduler"
    assert info["scheduler_config"]["use_karras_sigmas"] is True
    assert len(info["model_hash"]) == 64 and info["model_short_hash"] == info["model_hash"][:10]
    assert (info["device"], info["dtype"]) == ("cpu", "float32")
    assert info["torch"] == torch.__version__ and info["diffusers"]
    assert result.params.seed == FAST.seed
    assert result.wall_time_s > 0
    assert result.peak_memory_bytes is not None and result.peak_memory_bytes > 0
    import json

    json.dumps(info)  # stored as JSON with the image


def test_eta_is_reported_only_where_the_scheduler_uses_it(provider: DiffusersProvider) -> None:
    (ddim,) = _run(provider, FAST.model_copy(update={"sampler": "DDIM", "eta": 0.5}))
    (euler,) = _run(provider, FAST.model_copy(update={"eta": 0.5}))
    assert ddim.info["eta"] == 0.5 and "eta" not in euler.info


def test_same_seed_gives_identical_pixels(provider: DiffusersProvider) -> None:
    first, second = _run(provider, FAST)[0], _run(provider, FAST)[0]
    assert _max_diff(first, second) == 0
    (other,) = _run(provider, FAST.with_seed(43))
    assert _max_diff(first, other) > 10


@pytest.mark.parametrize("sampler", ["Euler", "Euler a", "DPM++ 2M SDE", "DPM++ SDE"])
def test_a_seed_gives_the_same_image_alone_and_in_a_batch(provider: DiffusersProvider, sampler: str) -> None:
    params = FAST.model_copy(update={"sampler": sampler})
    (alone,) = _run(provider, params)
    other, batched = _run(provider, params.with_seed(7), params.model_copy(update={"prompt": "x"}))
    in_batch, neighbour = _run(provider, params, params.with_seed(7))
    # Ancestral and SDE samplers draw noise every step; it must follow each image's own seed too.
    assert _max_diff(alone, in_batch) <= 2, f"{sampler}: batch changed the image by {_max_diff(alone, in_batch)}/255"
    assert _max_diff(neighbour, other) <= 2
    assert batched.params.prompt == "x" and _max_diff(batched, other) > 0


def test_progress_is_reported_once_per_step(provider: DiffusersProvider) -> None:
    calls: list[tuple[int, int]] = []
    provider.generate([FAST.model_copy(update={"steps": 3})], lambda s, t: calls.append((s, t)), lambda: False)
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_should_stop_interrupts_at_the_next_step(provider: DiffusersProvider) -> None:
    calls: list[tuple[int, int]] = []
    with pytest.raises(GenerationInterrupted):
        provider.generate(
            [FAST.model_copy(update={"steps": 3})], lambda s, t: calls.append((s, t)), lambda: bool(calls)
        )
    assert calls == [(1, 3)]
    (after,) = _run(provider, FAST)  # an interrupted run leaves the provider usable
    assert after.image.size == (64, 64)


def test_a_stop_requested_before_the_batch_starts_skips_it(models: Path, tmp_path: Path) -> None:
    fresh = DiffusersProvider(_settings(models, tmp_path))
    with pytest.raises(GenerationInterrupted):
        fresh.generate([FAST], lambda s, t: None, lambda: True)
    assert fresh.load_count == 0  # not even the model was loaded


def test_params_a_sampler_cannot_run_give_a_provider_error(provider: DiffusersProvider) -> None:
    with pytest.raises(ProviderError, match="LCM could not run these params"):
        _run(provider, FAST.model_copy(update={"sampler": "LCM", "steps": 60}))


def test_switching_sampler_does_not_reload(provider: DiffusersProvider) -> None:
    loads = provider.load_count
    for sampler in ("Euler a", "DPM++ 2M Karras", "DDIM", "Euler"):
        _run(provider, FAST.model_copy(update={"sampler": sampler}))
    assert provider.load_count == loads == 1


def test_batches_must_share_the_denoising_settings(provider: DiffusersProvider) -> None:
    for change in ({"steps": 3}, {"width": 72}, {"sampler": "DDIM"}, {"clip_skip": 2}, {"model": "other"}):
        with pytest.raises(ValueError, match=f"share '{next(iter(change))}'"):
            _run(provider, FAST, FAST.model_copy(update=change))
    with pytest.raises(ValueError, match="share 'eta'"):
        ddim = FAST.model_copy(update={"sampler": "DDIM"})
        _run(provider, ddim, ddim.model_copy(update={"eta": 1.0}))
    # Prompts, negatives, seeds and CFG scales may differ; so may eta where the sampler ignores it.
    other = {"prompt": "b", "negative_prompt": "c", "seed": 1, "cfg_scale": 3.0, "eta": 1.0}
    results = _run(provider, FAST, FAST.model_copy(update=other))
    assert [result.params.cfg_scale for result in results] == [FAST.cfg_scale, 3.0]


def test_clip_skip_changes_the_image(provider: DiffusersProvider) -> None:
    (plain,) = _run(provider, FAST)
    (skipped,) = _run(provider, FAST.model_copy(update={"clip_skip": 2}))
    assert _max_diff(plain, skipped) > 0


def test_list_models_reads_the_models_dir_from_any_thread(provider: DiffusersProvider) -> None:
    seen: list[list[str]] = []
    worker = threading.Thread(target=lambda: seen.append([m.name for m in provider.list_models()]))
    worker.start()
    worker.join(30)
    models = {m.name: m for m in provider.list_models()}
    assert seen and sorted(seen[0]) == sorted(models)
    assert models["tiny-sd"].source == "diffusers-folder"
    assert models["tiny-sd"].note.startswith("random weights")
    assert models["tiny-single"].source == "single-file"
    assert "allow_pickle" in models["tiny-pickle"].note
    assert all(m.provider == "diffusers" for m in models.values())


def test_hardware_info_and_samplers(provider: DiffusersProvider) -> None:
    info = provider.hardware_info()
    assert (info["device"], info["dtype"], info["loaded_model"]) == ("cpu", "float32", "tiny-sd")
    assert info["cpu_count"] >= 1 and info["memory_total_bytes"] > 0 and info["torch"] == torch.__version__
    assert "DPM++ 2M" in [s.name for s in provider.list_samplers()]
    assert isinstance(provider, Provider)


def test_single_file_export_loads_and_matches_the_folder(models: Path, tmp_path: Path) -> None:
    own = DiffusersProvider(_settings(models, tmp_path))
    (folder,) = _run(own, FAST)
    (single,) = _run(own, FAST.model_copy(update={"model": "tiny-single"}))
    assert own.load_count == 2  # one model at a time: the folder was dropped for the file
    assert _max_diff(folder, single) <= 2, "the exported checkpoint must hold the same weights"
    assert single.info["model_hash"] != folder.info["model_hash"]


def test_pickle_checkpoints_load_only_when_allowed(models: Path, tmp_path: Path) -> None:
    params = FAST.model_copy(update={"model": "tiny-pickle"})
    with pytest.raises(ProviderError, match="pickle checkpoint"):
        _run(DiffusersProvider(_settings(models, tmp_path)), params)
    (result,) = _run(DiffusersProvider(_settings(models, tmp_path, allow_pickle=True)), params)
    assert result.image.size == (64, 64)


def test_a_pickle_renamed_safetensors_is_refused(models: Path, tmp_path: Path) -> None:
    permissive = DiffusersProvider(_settings(models, tmp_path, allow_pickle=True))
    with pytest.raises(
        ProviderError, match=r"impostor\.safetensors is named \.safetensors but its content is a pickle"
    ):
        _run(permissive, FAST.model_copy(update={"model": "impostor"}))
    assert permissive.load_count == 0


@pytest.mark.parametrize("name", ["../tiny-sd", "tiny-sd/../../etc", "/etc/passwd", "..\\tiny-sd", "a/b/c"])
def test_path_like_model_names_are_rejected(provider: DiffusersProvider, name: str) -> None:
    with pytest.raises(ProviderError, match="invalid model name"):
        _run(provider, FAST.model_copy(update={"model": name}))


def test_hub_id_offline_gives_a_clear_error(models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty cache: nothing to fall back on
    own = DiffusersProvider(_settings(models, tmp_path))
    with pytest.raises(ProviderError, match="'someorg/some-model' is not in the models dir and the hub cannot be"):
        _run(own, FAST.model_copy(update={"model": "someorg/some-model"}))


def test_unknown_model_names_the_available_ones(provider: DiffusersProvider) -> None:
    with pytest.raises(ProviderError, match=r"unknown model 'missing'.*tiny-sd"):
        _run(provider, FAST.model_copy(update={"model": "missing"}))


def test_the_plugin_entry_point_registers_the_provider(models: Path, tmp_path: Path) -> None:
    registry = ProviderRegistry.from_plugins(get_plugin_manager(), _settings(models, tmp_path))
    assert "diffusers" in registry.names
    assert isinstance(registry.for_model("tiny-sd"), DiffusersProvider)


def test_devices_on_a_cpu_machine() -> None:
    assert devices.choose_device("cpu") == "cpu"
    assert devices.choose_dtype("cpu") == torch.float32
    assert devices.choose_dtype("cuda") == torch.float16
    with pytest.raises(ProviderError, match="unknown device 'tpu'"):
        devices.choose_device("tpu")
    if not devices.cuda_available():
        assert devices.choose_device("auto") in ("cpu", "mps")
        with pytest.raises(ProviderError, match="'cuda' was requested but torch sees no CUDA GPU"):
            devices.choose_device("cuda")
    tracker = devices.PeakMemoryTracker("cpu")
    tracker.reset()
    before = tracker.peak() or 0
    held = bytearray(b"x" * (64 * 1024 * 1024))  # written, so RSS really grows by 64 MiB while it lives
    tracker.sample()
    del held
    # The peak keeps the high-water mark after the memory is freed.
    assert (tracker.peak() or 0) >= before + 60 * 1024 * 1024


@pytest.mark.gpu
@pytest.mark.skipif(GPU_DEVICE is None, reason="needs a CUDA or MPS device")
def test_gpu_runs_half_precision_and_a_seed_means_the_same_noise_as_on_cpu(models: Path, tmp_path: Path) -> None:
    gpu = DiffusersProvider(Settings(data_dir=tmp_path, models_dir=models, device="auto"))
    gpu.optimize_for_hardware()
    assert (gpu.device, gpu.dtype) == (GPU_DEVICE, torch.float16)
    (large,) = _run(gpu, FAST.model_copy(update={"width": 512, "height": 512, "steps": 4}))
    assert large.info["dtype"] == "float16" and large.image.size == (512, 512)
    assert _pixels(large).std() > 1, "float16 produced NaNs or a flat image"
    assert large.peak_memory_bytes is not None and large.peak_memory_bytes > 0

    cpu = DiffusersProvider(_settings(models, tmp_path))
    # Ancestral samplers draw noise at every step: it too must follow the seed, not the device or dtype.
    for sampler in ("Euler", "Euler a"):
        params = FAST.model_copy(update={"sampler": sampler, "steps": 4})
        (on_gpu,), (on_cpu,) = _run(gpu, params), _run(cpu, params)
        assert _max_diff(on_gpu, on_cpu) <= 3, f"{sampler}: float16 GPU vs CPU differ by {_max_diff(on_gpu, on_cpu)}"
