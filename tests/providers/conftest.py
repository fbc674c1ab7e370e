"""What every provider test shares: one torch thread (on a small shared CPU, OpenMP threads waiting on each other
make tiny convolutions ~10x slower) and a CPU provider on the session's tiny model, built once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from cauldrond.providers.diffusers.provider import DiffusersProvider
from tests.providers.cpu_provider import new_cpu_provider


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def provider(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> DiffusersProvider:
    return new_cpu_provider(models_dir, tmp_path_factory.mktemp("data"))
