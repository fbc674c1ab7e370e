"""A bounded cache of prompt embeddings, so a sweep encodes each prompt once rather than once per image.

A CFG or seed sweep repeats one prompt over hundreds of cells; the text encoder would otherwise run for
every one of them, in every batch. Entries are made by the pipeline's own ``encode_prompt``, so a cached
embedding is the tensor the pipeline would have computed for that prompt.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch

DEFAULT_MAX_ENTRIES = 256
DEFAULT_MAX_BYTES = 256 * 1024**2  # SD 1.x: ~0.5 MB per entry in float32, so the entry count binds first

_Key = tuple[str, str, int | None]  # prompt, negative prompt, diffusers clip_skip
# (cond, uncond) for SD 1.x/2.x; (cond, uncond, pooled cond, pooled uncond) for SDXL's two encoders
_Entry = tuple[torch.Tensor, ...]


class PromptEmbeddingCache:
    """LRU cache of (positive, negative) text embeddings of one model, bounded by entries and bytes.

    ``hits`` and ``misses`` count per image, so a batch of 8 cells sharing one prompt adds 1 miss and 7 hits.
    Not thread-safe: the provider uses it under its own lock."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("the embedding cache needs room for at least one entry")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self.model_key: str | None = None
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        """Drop every entry (the counters stay: they describe the cache's whole life)."""
        self._entries.clear()
        self._bytes = 0
        self.model_key = None

    def encode(
        self,
        pipeline: Any,
        model_key: str,
        prompts: Sequence[str],
        negative_prompts: Sequence[str],
        clip_skip: int | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Batched (prompt_embeds, negative_prompt_embeds) for the pipeline's UNet, one row per prompt.

        ``model_key`` names the weights, device and dtype the pipeline runs with; a new key empties the cache,
        since another model's embeddings are meaningless to this one. ``clip_skip`` is diffusers' count of
        skipped layers (None for the last layer), passed on to ``encode_prompt`` unchanged."""
        cond, uncond, *_ = self.encode_all(pipeline, model_key, prompts, negative_prompts, clip_skip)
        return cond, uncond

    def encode_all(
        self,
        pipeline: Any,
        model_key: str,
        prompts: Sequence[str],
        negative_prompts: Sequence[str],
        clip_skip: int | None,
    ) -> tuple[torch.Tensor, ...]:
        """Every tensor the pipeline's ``encode_prompt`` returns, each batched one row per prompt: for SDXL also
        the pooled embeddings of the positive and negative prompts (its UNet takes them beside the time ids)."""
        if len(prompts) != len(negative_prompts):
            raise ValueError("one negative prompt per prompt")
        if model_key != self.model_key:
            self.clear()
            self.model_key = model_key
        rows = [
            self._get(pipeline, (prompt, negative, clip_skip))
            for prompt, negative in zip(prompts, negative_prompts, strict=True)
        ]
        return tuple(torch.cat(column) for column in zip(*rows, strict=True))

    def _get(self, pipeline: Any, key: _Key) -> _Entry:
        found = self._entries.get(key)
        if found is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return found
        self.misses += 1
        # One prompt per call: batching several through the text encoder would make an embedding depend, by
        # float rounding, on which other prompts happened to miss the cache at the same time.
        entry = _encode_one(pipeline, *key)
        self._entries[key] = entry
        self._bytes += _size(entry)
        while len(self._entries) > self.max_entries or (self._bytes > self.max_bytes and len(self._entries) > 1):
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= _size(evicted)
        return entry


def _encode_one(pipeline: Any, prompt: str, negative: str, clip_skip: int | None) -> _Entry:
    # As the pipeline's __call__ does it: under no_grad, on the execution device, with guidance on so the
    # negative embedding is made too (diffusers applies clip_skip to the positive prompt only). Keywords, since
    # SDXL's encode_prompt puts prompt_2 second; SDXL's second prompts default to the first ones, as in A1111.
    with torch.no_grad():
        encoded = pipeline.encode_prompt(
            prompt=prompt,
            device=pipeline._execution_device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=True,
            negative_prompt=negative,
            clip_skip=clip_skip,
        )
    return tuple(encoded)


def _size(entry: _Entry) -> int:
    return sum(tensor.numel() * tensor.element_size() for tensor in entry)
