"""Loading a single-file (LDM layout, civitai-style) checkpoint with no network.

Its component configs come from, in order: the ``<stem>.config`` sidecar when it names a diffusers folder in the
models dir (its pipeline class and configs are used as they are) or an architecture (``sd1``, ``sd2``, ``sd2-v``,
``sdxl``); otherwise the architecture detected from the checkpoint's tensor names (models/checkpoint_arch.py),
whose configs ship with the daemon. The hub is never asked.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from cauldrond.models import read_sidecar_config, sidecar_config_path
from cauldrond.models.checkpoint_arch import (
    ARCHES,
    CONFIG_CACHE_DIR,
    PIPELINE_CLASSES,
    UnrecognisedCheckpointError,
    architecture_of,
    config_folder,
    read_tensor_index,
)
from cauldrond.providers.base import ProviderError

SDXL_PIPELINE = "StableDiffusionXLPipeline"


def load_single_file(path: Path, models_dir: Path, *, dtype: Any, dtype_kwarg: str) -> Any:
    """The pipeline stored in ``path`` (already checked by format: safetensors, or an allowed pickle)."""
    import diffusers

    from cauldrond.providers.diffusers import loading

    sidecar = sidecar_config_path(path)
    named = read_sidecar_config(path)
    if named is None and sidecar.exists():
        raise ProviderError(
            f"{sidecar.name} must hold the name of a diffusers folder in the models dir or one of: {', '.join(ARCHES)}"
        )
    # A truncated or garbled file is refused here, by name and reason, before diffusers reads any of it.
    tensors = _tensor_index(path) if path.suffix.lower() == ".safetensors" else None
    if named is not None and named not in ARCHES:
        config = loading.resolve_model(models_dir, named)
        if config.kind != loading.FOLDER or config.path is None:
            raise ProviderError(f"{sidecar.name} names {named!r}, which is not a diffusers folder in the models dir")
        folder = config.path
        # The config folder's pipeline class (SD, SDXL...) decides how the checkpoint's keys are read.
        class_name = str(loading._read_json(folder / "model_index.json").get("_class_name"))
        described = f"config {named!r}"
    else:
        arch = named or _detect(path, tensors)
        folder = _config_folder(arch, models_dir)
        class_name = PIPELINE_CLASSES[arch]
        described = f"as {arch}" + ("" if named else " (detected from its tensor names)")
    pipeline_class = getattr(diffusers, class_name, None)
    if pipeline_class is None or not hasattr(pipeline_class, "from_single_file"):
        raise ProviderError(f"cannot load {path.name}: {class_name} pipelines cannot load single files")
    kwargs: dict[str, Any] = {dtype_kwarg: dtype, "config": str(folder), "local_files_only": True}
    if class_name == SDXL_PIPELINE:
        kwargs["add_watermarker"] = False  # as A1111 and ComfyUI: the image is the model's, unaltered
    elif "safety_checker" in loading._read_json(folder / "model_index.json"):
        # The daemon is a research tool run by the owner; a classifier blacking out images would skew results.
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    try:
        return pipeline_class.from_single_file(str(path), **kwargs)
    except Exception as exc:
        # diffusers raises a wide range of types here (OSError, ValueError, KeyError, RuntimeError on shapes...).
        raise ProviderError(f"cannot load {path.name} {described}: {exc}") from exc


def _tensor_index(path: Path) -> dict[str, Any]:
    try:
        return read_tensor_index(path)[0]
    except UnrecognisedCheckpointError as exc:
        raise ProviderError(f"cannot load {exc}") from exc


def _detect(path: Path, tensors: dict[str, Any] | None) -> str:
    if tensors is None:
        raise ProviderError(
            f"cannot load {path.name}: a pickle checkpoint's architecture is not read without unpickling it; "
            f"write one of {', '.join(ARCHES)} into {sidecar_config_path(path).name}"
        )
    try:
        return architecture_of(path.name, tensors)
    except UnrecognisedCheckpointError as exc:
        raise ProviderError(f"cannot load {exc}") from exc


def _config_folder(arch: str, models_dir: Path) -> Path:
    """The shipped configs for ``arch`` written out once, in the models dir (or a temp dir when that is
    read-only)."""
    try:
        return config_folder(arch, models_dir / CONFIG_CACHE_DIR)
    except OSError:
        fallback = Path(tempfile.gettempdir()) / f"cauldron-configs-{os.getuid() if hasattr(os, 'getuid') else 0}"
        return config_folder(arch, fallback)
