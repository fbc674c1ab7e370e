"""A transformers CLIP text encoder's weights in OpenCLIP's names, as SD 2.x and SDXL checkpoints store them.

The original (LDM) checkpoints keep their OpenCLIP encoder in OpenCLIP's own layout: one fused ``in_proj``
per attention layer (query, key and value stacked), ``resblocks`` for layers, ``ln_1``/``ln_2`` for the layer
norms, ``c_fc``/``c_proj`` for the MLP, and the projection as a plain (hidden, projection) matrix. This is the
inverse of diffusers' ``convert_open_clip_checkpoint``, used to write the tiny SDXL as a civitai-style file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_TOP_LEVEL = {
    "embeddings.token_embedding.weight": "token_embedding.weight",
    "embeddings.position_embedding.weight": "positional_embedding",
    "final_layer_norm.weight": "ln_final.weight",
    "final_layer_norm.bias": "ln_final.bias",
}
_LAYER_PARTS = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}
_SKIPPED = {"embeddings.position_ids"}


class OpenClipLayoutError(ValueError):
    """A weight with no OpenCLIP name."""


def to_open_clip(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """``tensors`` (a CLIPTextModelWithProjection state dict) renamed under ``prefix`` in OpenCLIP's layout."""
    import torch

    out: dict[str, torch.Tensor] = {}
    fused: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        bare = key.removeprefix("text_model.")
        if bare in _SKIPPED:
            continue
        if bare == "text_projection.weight":
            out[prefix + "text_projection"] = tensor.T.contiguous()  # nn.Linear stores (out, in)
            continue
        if bare in _TOP_LEVEL:
            out[prefix + _TOP_LEVEL[bare]] = tensor
            continue
        match = re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", bare)
        if match is None:
            raise OpenClipLayoutError(f"text_encoder_2: no OpenCLIP name for weight {key!r}")
        layer, part, leaf = int(match[1]), match[2], match[3]
        if part in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
            fused.setdefault((layer, leaf), {})[part[-6]] = tensor
            continue
        if part not in _LAYER_PARTS:
            raise OpenClipLayoutError(f"text_encoder_2: no OpenCLIP name for weight {key!r}")
        out[f"{prefix}transformer.resblocks.{layer}.{_LAYER_PARTS[part]}.{leaf}"] = tensor
    for (layer, leaf), parts in fused.items():
        if sorted(parts) != ["k", "q", "v"]:
            raise OpenClipLayoutError(f"text_encoder_2: layer {layer} lacks one of its q/k/v {leaf}s")
        stacked = torch.cat([parts["q"], parts["k"], parts["v"]]).contiguous()
        out[f"{prefix}transformer.resblocks.{layer}.attn.in_proj_{leaf}"] = stacked
    return out
