"""LoRAs, a VAE override and textual-inversion embeddings applied to the loaded pipeline before each batch.

None of them reloads the base model: LoRAs are peft adapters switched by ``set_adapters``, the VAE is swapped
as a component, embeddings add tokens. The provider calls ``apply`` after loading the batch's model and
``forget`` when it drops that model. What ``apply`` returns goes into every image's info (A1111's "Lora hashes",
"VAE", "VAE hash", "TI hashes") and into the prompt cache's key, since a LoRA on the text encoder or a newly
loaded embedding changes what a prompt encodes to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cauldrond.extra_networks import lora_hashes_text
from cauldrond.params import GenerationParams
from cauldrond.providers.diffusers.extras_catalogue import ExtraHashes
from cauldrond.providers.diffusers.lora_adapters import LoraAdapters
from cauldrond.providers.diffusers.ti_embeddings import TextualInversions
from cauldrond.providers.diffusers.vae_override import VaeOverride


@dataclass(frozen=True)
class AppliedExtras:
    info: dict[str, Any] = field(default_factory=dict)
    cache_key: str = ""  # what changes prompt encodings: the LoRA set and the loaded embeddings


class ExtraNetworks:
    """The LoRA adapters, VAE override and embeddings of the one loaded pipeline."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        # One place for the files' A1111 hashes: memory until the daemon hands in its store (provider.py).
        self.hashes = ExtraHashes()
        self.loras = LoraAdapters(hashes=self.hashes)
        self.vae = VaeOverride(self.hashes)
        self.embeddings = TextualInversions(self.hashes)

    def forget(self) -> None:
        self.loras.forget()
        self.vae.forget()
        self.embeddings.forget()

    def apply(self, pipeline: Any, batch: Sequence[GenerationParams], prepare: Callable[[Any], None]) -> AppliedExtras:
        """Ready ``pipeline`` for ``batch`` (which shares its LoRAs and VAE, params.py's Batching.SHARED)."""
        first = batch[0]
        info: dict[str, Any] = {}
        lora_hashes = self.loras.apply(pipeline, first.loras, self.models_dir)
        if lora_hashes:
            info["loras"] = [
                {"name": lora.name, "weight": lora.weight, "short_hash": short}
                for lora, (_, short) in zip(first.loras, lora_hashes, strict=True)
            ]
            info["lora_hashes"] = lora_hashes_text(lora_hashes)
        vae = self.vae.apply(pipeline, first.vae, self.models_dir, prepare)
        if vae is not None:
            info.update(vae)
        prompts = [text for params in batch for text in (params.prompt, params.negative_prompt)]
        used = self.embeddings.apply(pipeline, prompts, self.models_dir)
        if used:
            info["ti_hashes"] = ", ".join(f"{name}: {short}" for name, short in used)
        loaded = ",".join(sorted(self.embeddings.loaded))
        loras = ",".join(f"{lora.name}={lora.weight!r}" for lora in first.loras)
        return AppliedExtras(info, f"loras[{loras}]:embeddings[{loaded}]")
