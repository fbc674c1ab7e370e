"""``memory`` and ``cmd-flags``: what A1111 reports about its process, answered truthfully for this daemon."""

from __future__ import annotations

from typing import Any

import psutil

from cauldrond.config import Settings


def memory() -> dict[str, Any]:
    """A1111's shape: RAM of the machine, and CUDA's view of the GPU (or an error where there is none).
    Blocking (torch may initialise CUDA): call it on a thread."""
    ram = psutil.virtual_memory()
    result: dict[str, Any] = {"ram": {"free": ram.available, "used": ram.total - ram.available, "total": ram.total}}
    try:
        import torch

        if not torch.cuda.is_available():
            result["cuda"] = {"error": "no CUDA device on this machine"}
            return result
        free, total = torch.cuda.mem_get_info()
        stats = torch.cuda.memory_stats()
    except Exception as exc:  # a broken driver must not turn a status call into a 500
        result["cuda"] = {"error": f"{type(exc).__name__}: {exc}"}
        return result

    def pair(name: str) -> dict[str, int]:
        return {"current": int(stats.get(f"{name}.all.current", 0)), "peak": int(stats.get(f"{name}.all.peak", 0))}

    result["cuda"] = {
        "system": {"free": int(free), "used": int(total - free), "total": int(total)},
        "active": pair("active_bytes"),
        "allocated": pair("allocated_bytes"),
        "reserved": pair("reserved_bytes"),
        "inactive": pair("inactive_split_bytes"),
        "events": {"retries": int(stats.get("num_alloc_retries", 0)), "oom": int(stats.get("num_ooms", 0))},
    }
    return result


def cmd_flags(settings: Settings) -> dict[str, Any]:
    """The A1111 flags that mean something here, with the values that describe this daemon."""
    return {
        "api": True,
        "nowebui": True,  # there is no A1111 web UI; the PWA is at /
        "api_auth": "<the daemon's token>",  # Basic auth: any user name, the token as password
        "listen": settings.lan and settings.a1111_api_lan,
        "port": settings.port,
        "ckpt_dir": str(settings.resolved_models_dir),
        "data_dir": str(settings.data_dir),
        "use_cpu": ["all"] if settings.device == "cpu" else [],
        "device_id": None,
        "no_half": False,
        "xformers": False,
        "opt_sdp_attention": True,
        "enable_insecure_extension_access": False,
    }
