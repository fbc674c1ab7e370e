"""Textual-inversion embeddings from ``<models_dir>/embeddings/``, used by name in prompts as A1111 does.

An embedding's token is its file stem. Before a batch is encoded, each embedding whose name appears in one of
its prompts (as a word) is loaded into the pipeline's tokenizer and text encoder with diffusers'
``load_textual_inversion``; SDXL files hold one tensor per encoder (``clip_l``, ``clip_g``) and each goes into
its own. Loaded embeddings stay until the model is unloaded: a token only changes prompts that contain it.
Formats: A1111's ``{"emb_params": tensor}``, SDXL's ``{"clip_l", "clip_g"}`` and diffusers' ``{token: tensor}``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cauldrond.providers.base import ProviderError
from cauldrond.providers.diffusers import extras_catalogue as catalogue

log = logging.getLogger(__name__)


class TextualInversions:
    """The embeddings loaded into one pipeline. Not thread-safe: the provider calls it under its lock."""

    def __init__(self, hashes: catalogue.ExtraHashes | None = None) -> None:
        self.loaded: dict[str, str] = {}  # name -> A1111 short hash
        self.hashes = hashes  # where the embeddings' A1111 hashes are remembered

    def forget(self) -> None:
        self.loaded.clear()

    def apply(self, pipeline: Any, prompts: Sequence[str], models_dir: Path) -> list[tuple[str, str]]:
        """Load the embeddings ``prompts`` name; return (name, A1111 short hash) of each one they use."""
        used = []
        for extra in catalogue.list_extras(models_dir, catalogue.EMBEDDING):
            if not any(catalogue.mentions(prompt, extra.name) for prompt in prompts):
                continue
            if not extra.usable:
                raise ProviderError(f"embedding {extra.path.name} is named in the prompt but is {extra.note}")
            if extra.name not in self.loaded:
                _load(pipeline, extra)
                digest = catalogue.file_hash(extra.path, self.hashes)
                self.loaded[extra.name] = digest[: catalogue.EMBEDDING_SHORT_HASH]
            used.append((extra.name, self.loaded[extra.name]))
        return used


def _load(pipeline: Any, extra: catalogue.ExtraFile) -> None:
    from safetensors.torch import load_file

    catalogue.check_safetensors(extra)
    try:
        state = load_file(str(extra.path))
    except Exception as exc:  # safetensors raises its own error type for truncated or garbled files
        raise ProviderError(f"embedding {extra.path.name}: cannot read it as safetensors ({exc})") from exc
    encoders = [("text_encoder", "tokenizer", "clip_l")]
    if getattr(pipeline, "text_encoder_2", None) is not None:
        encoders.append(("text_encoder_2", "tokenizer_2", "clip_g"))
    vectors = []
    for encoder_attr, tokenizer_attr, key in encoders:
        encoder, tokenizer = getattr(pipeline, encoder_attr), getattr(pipeline, tokenizer_attr)
        tensor = _tensor_for(extra, state, key, sdxl=len(encoders) > 1)
        width = int(encoder.get_input_embeddings().weight.shape[1])
        if tensor.ndim == 1:
            tensor = tensor.unsqueeze(0)
        if tensor.ndim != 2 or int(tensor.shape[1]) != width:
            raise ProviderError(
                f"embedding {extra.path.name}: vectors of shape {tuple(tensor.shape)}, but this model's "
                f"{encoder_attr} takes width {width} (an embedding for another model family?)"
            )
        if extra.name in tokenizer.get_vocab():
            raise ProviderError(
                f"embedding {extra.path.name}: {extra.name!r} is already a word of the tokenizer; rename the file"
            )
        vectors.append((tensor, encoder, tokenizer))
    for tensor, encoder, tokenizer in vectors:
        try:
            pipeline.load_textual_inversion(
                tensor.to(encoder.dtype), token=extra.name, text_encoder=encoder, tokenizer=tokenizer
            )
        except ValueError as exc:
            raise ProviderError(f"embedding {extra.path.name}: {exc}") from exc
    log.info("loaded embedding %s (%d vectors)", extra.path.name, int(vectors[0][0].shape[0]))


def _tensor_for(extra: catalogue.ExtraFile, state: dict[str, Any], key: str, *, sdxl: bool) -> Any:
    if sdxl or key in state:
        if key not in state:
            raise ProviderError(
                f"embedding {extra.path.name}: an SDXL model needs 'clip_l' and 'clip_g' tensors; "
                f"the file has {sorted(state)[:4]}"
            )
        return state[key]
    if "emb_params" in state:
        return state["emb_params"]
    if len(state) == 1:
        return next(iter(state.values()))
    raise ProviderError(
        f"embedding {extra.path.name}: expected one tensor ('emb_params' or the token's), found {sorted(state)[:4]}"
    )
