"""A diffusers provider on the CPU with one torch thread, as the provider tests use it."""

from __future__ import annotations

from pathlib import Path

import torch

from cauldrond.config import Settings
from cauldrond.providers.diffusers.provider import DiffusersProvider


def new_cpu_provider(models_dir: Path, data_dir: Path) -> DiffusersProvider:
    fresh = DiffusersProvider(Settings(data_dir=data_dir, models_dir=models_dir, device="cpu"))  # type: ignore[arg-type]
    fresh.optimize_for_hardware()
    torch.set_num_threads(1)  # optimize_for_hardware chose cores - 1
    return fresh
