"""Params shared by the ComfyUI plugin tests (a helper module, not a conftest: names stay explicit)."""

from __future__ import annotations

from typing import Any

PARAMS: dict[str, Any] = {
    "prompt": "a lighthouse at dusk, ünïcode ✓",
    "negative_prompt": "blurry, text",
    "model": "tiny-sd",
    "sampler": "DPM++ 2M",
    "schedule": "Karras",
    "steps": 12,
    "cfg_scale": 6.5,
    "seed": 123456,
    "width": 64,
    "height": 96,
    "clip_skip": 1,
    "eta": 0.0,
    # A graph with no LoRA loader and the checkpoint's own VAE: no LoRAs, no VAE override (our params' "none").
    "vae": "",
    "loras": [],
}


def params(**changes: Any) -> dict[str, Any]:
    return {**PARAMS, **changes}
