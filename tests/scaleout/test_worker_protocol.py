"""The Ray worker's side of the protocol, run in this process: ``CauldronWorker`` is a plain class (pool.py wraps it
in ``ray.remote``), so its stream, its model LRU, its stop flags, the hash refusal and the provider lookup through
the plugins can be checked here directly, where coverage sees them. The Ray-run behaviour is in test_ray_engine.py.

The reference for the images is the local engine's provider run on the same params: what travels back as raw RGB
must be exactly what a local batch would have written.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cauldrond.params import GenerationParams
from cauldrond.scaleout.worker import CauldronWorker
from tests.providers.cpu_provider import new_cpu_provider


@pytest.fixture(scope="module")
def models(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("worker-models")
    for name in ("tiny-sd", "tiny-b"):
        shutil.copytree(models_dir / "tiny-sd", folder / name)
    return folder


def params(model: str = "tiny-sd", seed: int = 1, steps: int = 2) -> dict[str, Any]:
    return GenerationParams(
        model=model, prompt="a lighthouse at dusk", width=64, height=64, steps=steps, sampler="Euler", seed=seed
    ).to_json_dict()


def new_worker(models: Path, max_models: int = 2, plugins: str = "") -> CauldronWorker:
    return CauldronWorker(str(models), "cpu", False, max_models, 1, plugins)


def run(worker: CauldronWorker, batch: list[dict[str, Any]], **options: Any) -> list[tuple[Any, ...]]:
    return list(worker.run(options.pop("batch_id", "b1"), batch, options.pop("expected", None), None, **options))


def test_a_batch_streams_started_progress_and_the_local_providers_exact_pixels(models: Path, tmp_path: Path) -> None:
    worker = new_worker(models)
    batch = [params(seed=1), params(seed=2)]
    events = run(worker, batch)
    kinds = [event[0] for event in events]
    assert kinds[0] == "started" and kinds[-1] == "done"
    assert kinds[1:-1] == ["progress"] * 2  # one per step, in order
    assert [event[1:3] for event in events[1:-1]] == [(1, 2), (2, 2)]
    images = events[-1][1]
    assert [image["size"] for image in images] == [(64, 64), (64, 64)]

    local = new_cpu_provider(models, tmp_path).generate(
        [GenerationParams.model_validate(item) for item in batch], lambda step, total: None, lambda: False
    )
    for remote, reference in zip(images, local, strict=True):
        expected = np.asarray(reference.image.convert("RGB"))
        received = np.frombuffer(remote["rgb"], dtype=np.uint8).reshape(64, 64, 3)
        assert np.array_equal(received, expected)
        assert remote["params"] == reference.params.to_json_dict()
    described = worker.describe()
    assert (described["loads"], described["images"], described["current_batch"]) == (1, 2, None)
    assert [model["name"] for model in described["loaded_models"]] == ["tiny-sd"]


def test_models_beyond_the_bound_are_evicted_least_recently_used_first(models: Path) -> None:
    worker = new_worker(models, max_models=1)
    for model in ("tiny-sd", "tiny-b", "tiny-sd"):
        assert run(worker, [params(model)])[-1][0] == "done"
    described = worker.describe()
    assert described["loads"] == 3  # each switch loaded again: only one fits
    assert [model["name"] for model in described["loaded_models"]] == ["tiny-sd"]


def test_a_batch_stopped_before_it_begins_is_interrupted_and_loads_nothing(models: Path) -> None:
    worker = new_worker(models)
    assert worker.stop("b9", only_waiting=True) is False  # not waiting there: a pause leaves it alone
    assert worker.stop("b9") is True
    assert run(worker, [params()], batch_id="b9") == [("interrupted",)]
    assert worker.describe()["loads"] == 0


def test_a_model_whose_file_differs_from_the_daemons_is_refused_unloaded(models: Path) -> None:
    weights = sorted((models / "tiny-b").rglob("*.safetensors"))
    assert weights
    worker = new_worker(models)
    wrong = hashlib.sha256(b"the daemon's other file").hexdigest()
    ((kind, message),) = run(worker, [params("tiny-b")], expected=wrong)
    assert kind == "refused"
    assert "tiny-b" in message and wrong in message
    assert worker.describe()["loads"] == 0


def test_an_unknown_provider_fails_the_batch_with_its_name(models: Path) -> None:
    worker = new_worker(models)
    ((kind, message),) = run(worker, [params()], provider="no-such-provider")
    assert kind == "failed"
    assert "no provider 'no-such-provider' on this node" in message


def test_the_plugins_setting_limits_which_providers_a_worker_makes(models: Path) -> None:
    # Only the comfyui plugin allowed: it registers no provider, so the built-in diffusers one is not there either.
    limited = new_worker(models, plugins="comfyui")
    ((kind, message),) = run(limited, [params()])
    assert kind == "failed" and "no provider 'diffusers'" in message
    assert run(new_worker(models, plugins="diffusers"), [params()])[-1][0] == "done"
