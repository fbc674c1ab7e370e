"""LoRAs as peft adapters on the loaded pipeline: each file loaded once per model, weights set per batch.

diffusers' ``load_lora_weights`` reads A1111/kohya and diffusers LoRA layouts and injects the adapter into the
UNet (and the text encoders where the file has weights for them); ``set_adapters`` then picks the batch's LoRAs
and their weights without touching the base weights, so switching LoRA sets never reloads the model. Weight 0
adds ``0 * B(A(x))``: the same numbers as no LoRA.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cauldrond.params import LoraRef
from cauldrond.providers.base import ProviderError
from cauldrond.providers.diffusers import extras_catalogue as catalogue

log = logging.getLogger(__name__)

# LoRAs kept loaded as adapters beyond the batch's own (each costs its weights' memory on the device); the least
# recently used is deleted first, and loads again when a later batch names it.
MAX_LOADED = 8


class LoraAdapters:
    """The LoRAs loaded into one pipeline, by name. Not thread-safe: the provider calls it under its lock."""

    def __init__(self, max_loaded: int = MAX_LOADED, hashes: catalogue.ExtraHashes | None = None) -> None:
        self.max_loaded = max_loaded
        self.hashes = hashes  # where the LoRAs' A1111 hashes are remembered
        self._adapters: dict[str, str] = {}  # LoRA name -> peft adapter name, least recently used first
        self._active = False
        self._made = 0  # adapter names are never reused: peft keeps some per-name state

    def forget(self) -> None:
        """The pipeline was dropped (a model switch): its adapters went with it."""
        self._adapters.clear()
        self._active = False

    def apply(self, pipeline: Any, loras: Sequence[LoraRef], models_dir: Path) -> list[tuple[str, str]]:
        """Make ``loras`` (and only them) active at their weights; return (name, A1111 short hash) for each."""
        hashes = []
        self._evict(pipeline, keep={lora.name for lora in loras})
        for lora in loras:
            extra = catalogue.find_extra(models_dir, catalogue.LORA, lora.name)
            if lora.name not in self._adapters:
                self._load(pipeline, extra)
            self._adapters[lora.name] = self._adapters.pop(lora.name)  # most recently used last
            hashes.append((lora.name, catalogue.lora_hash(extra.path, self.hashes)[: catalogue.LORA_SHORT_HASH]))
        if not loras:
            if self._active:
                pipeline.disable_lora()
                self._active = False
            return hashes
        pipeline.enable_lora()
        pipeline.set_adapters(
            [self._adapters[lora.name] for lora in loras], adapter_weights=[lora.weight for lora in loras]
        )
        self._active = True
        return hashes

    def _evict(self, pipeline: Any, keep: set[str]) -> None:
        """Delete least recently used adapters, never one of ``keep``, until the batch's own fit beside the rest."""
        room = max(self.max_loaded, len(keep))
        for name in [name for name in self._adapters if name not in keep]:
            if len(self._adapters) + len(keep - set(self._adapters)) <= room:
                break
            _drop(pipeline, self._adapters.pop(name))
            log.info("unloaded LoRA %s (more than %d loaded)", name, self.max_loaded)

    def loaded(self) -> list[str]:
        """The LoRAs loaded as adapters now, least recently used first."""
        return list(self._adapters)

    def _load(self, pipeline: Any, extra: catalogue.ExtraFile) -> None:
        from safetensors.torch import load_file

        catalogue.check_safetensors(extra)
        try:
            state = load_file(str(extra.path))
        except Exception as exc:  # safetensors raises its own error type for truncated or garbled files
            raise ProviderError(f"LoRA {extra.path.name}: cannot read it as safetensors ({exc})") from exc
        adapter = f"cauldron_lora_{self._made}"  # peft adapter names become module keys: no dots
        self._made += 1
        try:
            pipeline.load_lora_weights(state, adapter_name=adapter)
        except Exception as exc:  # peft and diffusers raise ValueError, RuntimeError or KeyError on a misfit
            _drop(pipeline, adapter)
            raise ProviderError(
                f"LoRA {extra.path.name} does not fit this model (made for another architecture?): {_first_line(exc)}"
            ) from exc
        if not any(adapter in names for names in pipeline.get_list_adapters().values()):
            _drop(pipeline, adapter)
            raise ProviderError(
                f"LoRA {extra.path.name} matches none of this model's layers (made for another architecture?)"
            )
        self._adapters[extra.name] = adapter
        log.info("loaded LoRA %s as adapter %s", extra.path.name, adapter)


def _drop(pipeline: Any, adapter: str) -> None:
    # A failed load may have injected part of the adapter; leaving it would change later images.
    try:
        pipeline.delete_adapters(adapter)
    except Exception as exc:  # nothing was injected, or peft cannot find it: either way nothing of it is left
        log.debug("no adapter %s to delete: %s", adapter, exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
