"""The A1111 options this daemon keeps: the default checkpoint and CLIP skip, persisted in the data dir.

``POST /sdapi/v1/options`` with ``sd_model_checkpoint`` sets the daemon's default model (the model of any cell,
from any front door, that names none), as switching the checkpoint does in A1111. It is written to
``<data_dir>/a1111-options.json`` and applied at the next start over the ``default_model`` setting; delete the
file to go back to the setting."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cauldrond.media.png import write_bytes_atomic
from cauldrond.params import GenerationParams

log = logging.getLogger(__name__)

OPTIONS_FILE = "a1111-options.json"
# Options we report and do not let a client change; posting them back unchanged (Open WebUI posts the whole
# dict back to switch models) is fine.
FIXED_OPTIONS: dict[str, Any] = {
    "sd_vae": "Automatic",
    "samples_format": "png",
    "samples_save": True,
    "save_to_dirs": False,
    "grid_save": False,
    "enable_pnginfo": True,
    "live_previews_enable": True,
    "live_previews_image_format": "png",
    "show_progress_every_n_steps": 1,
    "eta_noise_seed_delta": 0,
    "sd_checkpoints_limit": 1,
}
_CLIP_SKIP = GenerationParams.model_fields["clip_skip"]


@dataclass
class StoredOptions:
    default_model: str | None = None
    clip_skip: int = 1


def load_options(data_dir: Path) -> StoredOptions:
    path = data_dir / OPTIONS_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return StoredOptions()
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return StoredOptions()
    options = StoredOptions()
    if isinstance(raw, dict):
        model = raw.get("default_model")
        if isinstance(model, str) and model.strip():
            options.default_model = model
        clip_skip = raw.get("clip_skip")
        if isinstance(clip_skip, int) and not isinstance(clip_skip, bool) and 1 <= clip_skip <= 12:
            options.clip_skip = clip_skip
    return options


def save_options(data_dir: Path, options: StoredOptions) -> None:
    """Atomically: a crash leaves the old file or the new one, never half of one."""
    data = json.dumps(asdict(options), indent=2).encode("utf-8")
    write_bytes_atomic(data, data_dir, OPTIONS_FILE)
