"""The check of an experiment's LoRA, VAE and embedding files before it is stored (experiments/service.py).

For each distinct (model, VAE, LoRAs, prompts) among the cells, the files they name are looked at through their
headers only (models/extra_checks.py) against what the cell's model expects (models/model_shape.py). Names are
checked before this, by the service; a hub model has no local configs to compare with, so only the files
themselves are checked for it. Both readers remember what they read per file version, so this costs a few stats
per cell once the files have been seen.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cauldrond.models.extra_checks import ExtraFileError, check_embedding, check_lora, check_vae
from cauldrond.models.model_shape import ModelShape, model_shape
from cauldrond.params import GenerationParams
from cauldrond.providers.base import ProviderError
from cauldrond.providers.diffusers import extras_catalogue as catalogue
from cauldrond.providers.diffusers import loading


def check_extra_files(models_dir: Path, cells: Sequence[GenerationParams]) -> None:
    """ExtraFileError (with ``field`` and ``value``) for the first LoRA, VAE or embedding file that ``cells``
    use and that cannot serve the cell's model: the message names the file and the reason."""
    listed = {
        kind: {extra.name: extra for extra in catalogue.list_extras(models_dir, kind)}
        for kind in (catalogue.LORA, catalogue.VAE, catalogue.EMBEDDING)
    }
    shapes: dict[str, ModelShape | None] = {}
    seen: set[tuple[Any, ...]] = set()
    for cell in cells:
        key = (cell.model, cell.vae, tuple(lora.name for lora in cell.loras), cell.prompt, cell.negative_prompt)
        if key in seen:
            continue
        seen.add(key)
        if cell.model not in shapes and (cell.loras or cell.vae or listed[catalogue.EMBEDDING]):
            shapes[cell.model] = _shape_of(models_dir, cell.model)  # only for a cell that may use a file
        shape = shapes.get(cell.model)
        for lora in cell.loras:
            extra = listed[catalogue.LORA].get(lora.name)
            if extra is not None and extra.usable:
                _checked("loras", lora.name, check_lora, extra.path, shape)
        vae = listed[catalogue.VAE].get(cell.vae) if cell.vae else None
        if vae is not None and vae.usable:
            _checked("vae", cell.vae, _check_vae, vae.path, shape)
        for extra in listed[catalogue.EMBEDDING].values():
            if not any(catalogue.mentions(text, extra.name) for text in (cell.prompt, cell.negative_prompt)):
                continue
            if not extra.usable:
                raise ExtraFileError(
                    f"embedding {extra.path.name} is named in the prompt but is {extra.note}",
                    field="prompt",
                    value=extra.name,
                )
            _checked("prompt", extra.name, check_embedding, extra.path, shape)


def _shape_of(models_dir: Path, model: str) -> ModelShape | None:
    try:
        source = loading.resolve_model(models_dir, model)
    except ProviderError:
        return None  # the service refuses unknown models itself
    return model_shape(model, source.path, models_dir) if source.path is not None else None


def _check_vae(path: Path, shape: ModelShape | None) -> None:
    if path.is_file():
        check_vae(path, shape)
        return
    # A diffusers folder: its config says the latent channels, its weights file must still be whole.
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        raise ExtraFileError(f"VAE {path.name}: the folder has no .safetensors weights")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except ValueError:
        raise ExtraFileError(f"VAE {path.name}: its config.json is not valid JSON") from None
    check_vae(weights[0], shape, config if isinstance(config, dict) else {})


def _checked(
    field: str, value: str, check: Callable[[Path, ModelShape | None], None], path: Path, shape: ModelShape | None
) -> None:
    """``check(path, shape)``, its refusal naming the param (``field``) and name (``value``) that chose the file."""
    try:
        check(path, shape)
    except ExtraFileError as exc:
        raise ExtraFileError(str(exc), field=field, value=value) from None
    except OSError as exc:
        raise ExtraFileError(f"{path.name}: cannot read it: {exc.strerror or exc}", field=field, value=value) from None
