"""Which torch device and dtype to run on, what the hardware is, how much memory a generation peaked at."""

from __future__ import annotations

import os
import platform
from typing import Any

import psutil
import torch

from cauldrond.providers.base import ProviderError

DEVICES = ("auto", "cuda", "mps", "cpu")


def cuda_available() -> bool:
    return bool(torch.cuda.is_available())


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def choose_device(override: str = "auto") -> str:
    """``auto`` picks cuda > mps > cpu. An explicit device that this machine lacks is an error, not a
    fallback, so a misconfigured box does not silently run a sweep a hundred times slower."""
    wanted = override.strip().lower()
    if wanted not in DEVICES:
        raise ProviderError(f"unknown device {override!r}; valid: {', '.join(DEVICES)}")
    if wanted == "auto":
        if cuda_available():
            return "cuda"
        if mps_available():
            return "mps"
        return "cpu"
    if wanted == "cuda" and not cuda_available():
        raise ProviderError(
            "device 'cuda' was requested but torch sees no CUDA GPU "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none'}); "
            "install a CUDA build of torch or set device to auto"
        )
    if wanted == "mps" and not mps_available():
        raise ProviderError(
            "device 'mps' was requested but the Apple Metal backend is not available here; set device to auto"
        )
    return wanted


def choose_dtype(device: str) -> torch.dtype:
    # Half precision halves memory and roughly doubles speed on GPUs; CPUs are slow and inexact at float16.
    return torch.float16 if device in ("cuda", "mps") else torch.float32


def hardware_info(device: str) -> dict[str, Any]:
    """A JSON-safe description of the machine as the provider sees it."""
    memory = psutil.virtual_memory()
    info: dict[str, Any] = {
        "device": device,
        "device_name": _cpu_name(),
        "memory_total_bytes": int(memory.total),
        "memory_free_bytes": int(memory.available),
        "torch": torch.__version__,
        "cuda_available": cuda_available(),
        "cuda_version": torch.version.cuda,
        "mps_available": mps_available(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "system_memory_total_bytes": int(memory.total),
    }
    if device == "cuda" and cuda_available():
        index = torch.cuda.current_device()
        free, total = torch.cuda.mem_get_info(index)
        props = torch.cuda.get_device_properties(index)
        info.update(
            device_name=torch.cuda.get_device_name(index),
            memory_total_bytes=int(total),
            memory_free_bytes=int(free),
            compute_capability=f"{props.major}.{props.minor}",
        )
    elif device == "mps" and mps_available():
        # Apple silicon shares system memory with the GPU; Metal's recommended ceiling is the useful limit.
        info["device_name"] = f"Apple {platform.machine()} GPU (Metal)"
        recommended = getattr(torch.mps, "recommended_max_memory", None)
        if recommended is not None:
            info["memory_total_bytes"] = int(recommended())
    return info


def _cpu_name() -> str:
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return name or "unknown CPU"


class PeakMemoryTracker:
    """Peak memory of one generation on ``device``: call ``reset`` before, ``sample`` at each step, ``peak``
    after.

    cuda keeps its own high-water mark of tensor allocations; mps and cpu expose only the current figure
    (Metal driver allocations, process RSS), so those peaks are the largest value seen at a step boundary."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._peak = 0
        self._process = psutil.Process()

    def reset(self) -> None:
        self._peak = 0
        if self.device == "cuda" and cuda_available():
            torch.cuda.reset_peak_memory_stats()
        self.sample()

    def sample(self) -> None:
        if self.device == "cuda":
            return  # tracked by the CUDA caching allocator itself
        self._peak = max(self._peak, self._current())

    def peak(self) -> int | None:
        if self.device == "cuda":
            return int(torch.cuda.max_memory_allocated()) if cuda_available() else None
        self.sample()
        return self._peak or None

    def _current(self) -> int:
        if self.device == "mps" and mps_available():
            return int(torch.mps.driver_allocated_memory())
        return int(self._process.memory_info().rss)
