"""A1111's extra-network prompt syntax for LoRAs: ``<lora:name>`` and ``<lora:name:weight>``.

A1111 reads the tags out of the prompt before the text encoder sees it; cauldron does the same once, when an
experiment is created (experiments/cells.py), so the tags become the ``loras`` param and an A1111 user's Prompt
S/R sweep over ``<lora:name:0.6>`` plans and batches like a ``lora_weight`` axis. Infotext puts the tags back at
the end of the prompt (media/png.py), so A1111, civitai and our own importer read the LoRAs again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

LORA_TAG = re.compile(r"<(lora|lyco):([^>]*)>", re.IGNORECASE)
DEFAULT_WEIGHT = 1.0  # A1111's extra_networks_default_multiplier


class LoraTagError(ValueError):
    """A ``<lora:...>`` tag cauldron cannot read; the message quotes it."""


def split_lora_tags(prompt: str) -> tuple[str, list[dict[str, Any]]]:
    """The prompt without its ``<lora:...>`` tags, and the LoRAs they name as ``{name, weight}`` in order.

    A1111's extra forms (separate text-encoder and UNet weights, ``te=``/``unet=``/``dyn=``) are refused rather
    than half-applied."""
    loras: list[dict[str, Any]] = []

    def take(match: re.Match[str]) -> str:
        parts = match.group(2).split(":")
        name = parts[0].strip()
        if not name or len(parts) > 2:
            raise LoraTagError(
                f"cannot read {match.group(0)!r}: write <lora:name> or <lora:name:weight> "
                "(separate text-encoder and UNet weights are not supported)"
            )
        try:
            weight = float(parts[1]) if len(parts) == 2 else DEFAULT_WEIGHT
        except ValueError:
            raise LoraTagError(f"cannot read {match.group(0)!r}: weight {parts[1]!r} is not a number") from None
        loras.append({"name": name, "weight": weight})
        return ""

    stripped = LORA_TAG.sub(take, prompt)
    # A tag between two words leaves two spaces; the text encoder would see the same tokens, but keep it tidy.
    return (re.sub(r"[ \t]{2,}", " ", stripped).strip() if loras else prompt), loras


def lora_tags(loras: Sequence[Mapping[str, Any]]) -> str:
    """``<lora:name:weight>`` for each LoRA, space-separated, weights as A1111 writes numbers (0.6, 1)."""
    return " ".join(f"<lora:{lora['name']}:{float(lora['weight']):g}>" for lora in loras)


def prompt_with_tags(prompt: str, loras: Sequence[Mapping[str, Any]]) -> str:
    """The prompt as A1111 would show it: the LoRA tags at its end."""
    tags = lora_tags(loras)
    return f"{prompt} {tags}".strip() if tags else prompt


def lora_hashes_text(entries: Sequence[tuple[str, str]]) -> str:
    """A1111's "Lora hashes" value: ``name: shorthash`` pairs joined by ", " (":" and "," dropped from names)."""
    return ", ".join(f"{name.replace(':', '').replace(',', '')}: {short}" for name, short in entries)
