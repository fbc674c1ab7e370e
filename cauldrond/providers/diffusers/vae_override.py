"""A VAE from ``<models_dir>/vae/`` in place of the model's own, swapped per batch without reloading the model.

A single ``.safetensors`` VAE (A1111's kind, usually in the original LDM layout, sometimes in diffusers') carries
no config: like A1111, cauldron loads its weights into a VAE built from the loaded model's own VAE config, so it
must be of the same family (latent channels and shapes); a diffusers folder brings its config. The model's own
VAE is kept and put back for batches that name no VAE.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cauldrond.providers.base import ProviderError
from cauldrond.providers.diffusers import extras_catalogue as catalogue

log = logging.getLogger(__name__)


class VaeOverride:
    """The model's own VAE and at most one override, for one loaded pipeline."""

    def __init__(self, hashes: catalogue.ExtraHashes | None = None) -> None:
        self._own: Any = None
        self._override: tuple[str, Any] | None = None
        self.hashes = hashes  # where the VAEs' A1111 hashes are remembered

    def forget(self) -> None:
        self._own = None
        self._override = None

    def apply(
        self, pipeline: Any, name: str, models_dir: Path, prepare: Callable[[Any], None]
    ) -> dict[str, str] | None:
        """Put VAE ``name`` (empty: the model's own) into ``pipeline``; return its A1111 name and short hash."""
        if self._own is None:
            self._own = pipeline.vae
        if not name:
            if pipeline.vae is not self._own:
                pipeline.vae = self._own
            return None
        extra = catalogue.find_extra(models_dir, catalogue.VAE, name)
        if self._override is None or self._override[0] != name:
            self._override = None  # the old override's memory can go before the new one is read
            vae = _load(extra, self._own)
            prepare(vae)
            self._override = (name, vae)
        pipeline.vae = self._override[1]
        digest = catalogue.file_hash(_weights_file(extra.path), self.hashes)
        return {"vae": name, "vae_hash": digest, "vae_short_hash": digest[: catalogue.VAE_SHORT_HASH]}


def _load(extra: catalogue.ExtraFile, own: Any) -> Any:
    from diffusers import AutoencoderKL

    if extra.path.is_dir():
        try:
            vae = AutoencoderKL.from_pretrained(str(extra.path), use_safetensors=True, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ProviderError(f"VAE {extra.name}: cannot load the folder ({_first_line(exc)})") from exc
        _check_family(extra, own, int(vae.config.latent_channels), len(vae.config.block_out_channels))
        return vae  # the provider moves it to its device and dtype
    state = _read_state(extra)
    if "encoder.down.0.block.0.conv1.weight" in state:  # the LDM layout A1111's VAEs use
        from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

        state = convert_ldm_vae_checkpoint(state, dict(own.config))
    conv_out = state.get("encoder.conv_out.weight")
    if conv_out is None:
        raise ProviderError(f"VAE {extra.path.name}: no encoder.conv_out weight; this is not an AutoencoderKL VAE")
    # The encoder outputs mean and log-variance per latent channel.
    _check_family(extra, own, int(conv_out.shape[0]) // 2, len(own.config.block_out_channels))
    vae = AutoencoderKL.from_config(own.config)
    try:
        vae.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ProviderError(f"VAE {extra.path.name} does not fit this model's VAE layout: {_first_line(exc)}") from exc
    return vae  # the provider moves it to its device and dtype


def _check_family(extra: catalogue.ExtraFile, own: Any, latent_channels: int, levels: int) -> None:
    expected = int(own.config.latent_channels)
    if latent_channels != expected:
        raise ProviderError(
            f"VAE {extra.name} has {latent_channels} latent channels and this model's VAE {expected}: "
            "a VAE of another model family"
        )
    if levels != len(own.config.block_out_channels):
        raise ProviderError(f"VAE {extra.name} downsamples differently from this model's VAE")


def _read_state(extra: catalogue.ExtraFile) -> dict[str, Any]:
    from safetensors.torch import load_file

    catalogue.check_safetensors(extra)
    try:
        state = load_file(str(extra.path))
    except Exception as exc:  # safetensors raises its own error type for truncated or garbled files
        raise ProviderError(f"VAE {extra.path.name}: cannot read it as safetensors ({exc})") from exc
    # Some VAEs are cut from a full checkpoint and keep its prefix.
    prefix = "first_stage_model."
    return {key.removeprefix(prefix): value for key, value in state.items()}


def _weights_file(path: Path) -> Path:
    if path.is_file():
        return path
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise ProviderError(f"VAE {path.name}: the folder has no .safetensors weights")
    return files[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
