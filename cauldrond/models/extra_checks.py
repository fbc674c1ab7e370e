"""Whether a LoRA, VAE or embedding file can serve a model, from the file's safetensors header alone.

The experiment service asks before it stores anything, so a bad file is refused at creation, naming the file and
the reason, rather than failing each of its jobs later (the provider still checks again when it loads the file:
a file can change in between). Only the header is read: the 8-byte length and the JSON it announces, whose
offsets also show a truncated file (checkpoint_arch.read_tensor_index). What each header says is remembered per
file version (path, size, mtime), so a sweep of thousands of cells reads each file once.

- any: a pickle renamed ``.safetensors``, a file that is not safetensors, a truncated one;
- LoRA: none of its tensors are LoRA weights; weights for layers the model lacks (an SD 1.x LoRA names
  ``down_blocks.0.attentions``, which SDXL has not; an SDXL one a second text encoder or ``input_blocks.4.1``
  with up to ten transformer blocks); cross-attention or text-encoder layers of another width (768 SD 1.x, 1024
  SD 2.x, 2048 SDXL);
- VAE: another number of latent channels or of down blocks than the model's VAE;
- embedding: vectors of another width than the text encoder(s), or an SDXL model without ``clip_l``/``clip_g``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from cauldrond.models.checkpoint_arch import UnrecognisedCheckpointError, read_tensor_index
from cauldrond.models.model_shape import FAMILY_BY_CROSS_WIDTH, ModelShape, Site

T = TypeVar("T")

_SITE_PATTERNS = (
    (re.compile(r"(down_blocks|up_blocks)_(\d+)_attentions_(\d+)(?:_transformer_blocks_(\d+))?"), 3),
    (re.compile(r"(mid_block)_attentions_(\d+)(?:_transformer_blocks_(\d+))?"), 2),
    # The original layout's attention sits at index 1 of a block; ``.1.conv`` there is an upsampler.
    (re.compile(r"(input_blocks|output_blocks)_(\d+)_1_(?:transformer_blocks_(\d+)|proj_in|proj_out|norm)"), 2),
    (re.compile(r"(middle_block)_1_(?:transformer_blocks_(\d+)|proj_in|proj_out|norm)"), 1),
)
_CROSS_ATTENTION_INPUT = re.compile(r"attn2_(?:processor_)?to_[kv]")
_TEXT_INPUT = re.compile(r"self_attn_(?:processor_)?[qkv]_proj|mlp_fc1")
_DOWN_SUFFIXES = (".lora_down.weight", ".lora_A.weight", ".lora.down.weight", "_lora.down.weight")
_PREFIXES = (  # LoRA tensor name prefix -> (component, text encoder number)
    ("lora_unet_", "unet", 0),
    ("lora_te1_", "text", 1),
    ("lora_te2_", "text", 2),
    ("lora_te_", "text", 1),
    ("unet.", "unet", 0),
    ("text_encoder_2.", "text", 2),
    ("text_encoder.", "text", 1),
)


class ExtraFileError(ValueError):
    """A LoRA, VAE or embedding file that cannot serve the model; the message names the file and the reason.
    ``field`` and ``value`` name the param that asked for it (``loras``/``vae``/``prompt``) where known."""

    def __init__(self, message: str, *, field: str | None = None, value: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


# --- the header's facts, remembered per file version ------------------------------------------------------

_lock = threading.Lock()
_facts: dict[tuple[str, str, int, int], Any] = {}
_MAX_REMEMBERED = 1024


class _Refused(str):
    """A remembered refusal: its message (a new ExtraFileError is raised each time, so no traceback piles up)."""


def _remembered(kind: str, path: Path, read: Callable[[], T]) -> T:
    """``read()`` once per (path, size, mtime); an ExtraFileError it raises is remembered too."""
    stat = path.stat()
    key = (kind, str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _lock:
        found = _facts.get(key)
    if found is None:
        try:
            found = read()
        except ExtraFileError as exc:
            found = _Refused(str(exc))
        with _lock:
            if len(_facts) >= _MAX_REMEMBERED:
                _facts.pop(next(iter(_facts)))
            _facts[key] = found
    if isinstance(found, _Refused):
        raise ExtraFileError(str(found))
    return cast(T, found)  # stored by this kind's reader


def header_shapes(label: str, path: Path) -> dict[str, list[int]]:
    """Each tensor's shape from a whole safetensors file's header; ExtraFileError for a pickle, a file that is
    not safetensors or one cut short. ``label`` ("LoRA", "VAE", "embedding") starts the message."""

    def read() -> dict[str, list[int]]:
        try:
            tensors, _ = read_tensor_index(path)
        except UnrecognisedCheckpointError as exc:
            with path.open("rb") as handle:
                head = handle.read(4)
            # Only after the safetensors reading failed: a header of 128 + 256k bytes also starts with 0x80.
            if head[:1] == b"\x80" or head == b"PK\x03\x04":
                # A pickle can run code when loaded; one posing as safetensors is never opened.
                raise ExtraFileError(f"{label} {path.name}: named .safetensors but its content is a pickle") from None
            raise ExtraFileError(f"{label} {exc}") from None
        return {
            name: [int(size) for size in entry["shape"]]
            for name, entry in tensors.items()
            if isinstance(entry, dict) and isinstance(entry.get("shape"), list)
        }

    return _remembered(f"header:{label}", path, read)


# --- LoRA ---------------------------------------------------------------------------------------------------


def check_lora(path: Path, shape: ModelShape | None) -> None:
    """ExtraFileError when the LoRA at ``path`` is not a whole LoRA or not for ``shape``'s architecture."""
    shapes = header_shapes("LoRA", path)
    facts = _remembered("lora", path, lambda: _lora_facts(path, shapes))
    if shape is None:
        return
    problem = _lora_misfit(facts, shape)
    if problem:
        raise ExtraFileError(f"LoRA {path.name} is for another architecture than {shape.describe()}: {problem}")


def _lora_facts(path: Path, shapes: Mapping[str, list[int]]) -> dict[str, Any]:
    if not any("lora" in name.lower() or "hada_" in name or "lokr_" in name for name in shapes):
        found = ", ".join(sorted(shapes)[:3]) or "no tensors"
        raise ExtraFileError(f"LoRA {path.name}: none of its tensors are LoRA weights (it has {found})")
    sites: dict[Site, int] = {}  # site -> deepest transformer block named + 1
    cross: set[int] = set()
    text: dict[int, set[int]] = {}
    components = set()
    for name, tensor_shape in shapes.items():
        component, encoder, module = _split(name)
        components.add(component)
        is_down = name.endswith(_DOWN_SUFFIXES) and len(tensor_shape) == 2
        if component == "unet":
            for pattern, parts in _SITE_PATTERNS:
                match = pattern.search(module)
                if match:
                    groups = match.groups()
                    site = (groups[0], *(int(g) for g in groups[1:parts]))
                    depth = int(groups[parts]) + 1 if groups[parts] is not None else 0
                    sites[site] = max(sites.get(site, 0), depth)
                    break
            if is_down and _CROSS_ATTENTION_INPUT.search(module):
                cross.add(tensor_shape[1])
        elif component == "text":
            text.setdefault(encoder, set())
            if is_down and _TEXT_INPUT.search(module):
                text[encoder].add(tensor_shape[1])
    if components == {""}:
        # e.g. a Flux or SD3 LoRA (``transformer.*``): diffusers would find nothing of it to apply here.
        raise ExtraFileError(
            f"LoRA {path.name} is for another architecture: none of its tensors names a layer of a Stable Diffusion "
            f"UNet or text encoder (it has {', '.join(sorted(shapes)[:2])})"
        )
    return {"sites": sites, "cross": cross, "text": text}


def _split(name: str) -> tuple[str, int, str]:
    """(component, text encoder number, module path with ``_`` for ``.``) of a LoRA tensor name."""
    for prefix, component, encoder in _PREFIXES:
        if name.startswith(prefix):
            return component, encoder, name[len(prefix) :].replace(".", "_")
    module = name.replace(".", "_")
    if any(pattern.search(module) for pattern, _ in _SITE_PATTERNS):
        return "unet", 0, module  # diffusers' older layout names UNet layers without a prefix
    return "", 0, module


def _lora_misfit(facts: Mapping[str, Any], shape: ModelShape) -> str:
    text: Mapping[int, set[int]] = facts["text"]
    if 2 in text and len(shape.text_widths) < 2:
        return "it has weights for a second text encoder (an SDXL LoRA)"
    for encoder, widths in sorted(text.items()):
        expected = shape.text_widths[encoder - 1] if encoder <= len(shape.text_widths) else None
        wrong = sorted(width for width in widths if width != expected)
        if expected is not None and wrong:
            return f"its text encoder {encoder} layers are {wrong[0]} wide, the model's {expected}"
    cross: set[int] = facts["cross"]
    wrong = sorted(width for width in cross if width != shape.cross_attention_dim)
    if shape.cross_attention_dim is not None and wrong:
        made_for = FAMILY_BY_CROSS_WIDTH.get(wrong[0])
        return (
            f"its cross-attention layers take {wrong[0]}-wide text embeddings"
            + (f" ({made_for})" if made_for else "")
            + f", the model's {shape.cross_attention_dim}"
        )
    if shape.attention_sites is not None:
        sites: Mapping[Site, int] = facts["sites"]
        for site, depth in sorted(sites.items(), key=lambda item: str(item[0])):
            if site not in shape.attention_sites:
                return f"it has weights for {_site_name(site)}, an attention layer the model's UNet does not have"
            if depth > shape.attention_sites[site]:
                return (
                    f"it has weights for {depth} transformer blocks in {_site_name(site)}, where the model's UNet "
                    f"has {shape.attention_sites[site]}"
                )
    return ""


def _site_name(site: Site) -> str:
    kind, *numbers = site
    if kind in ("down_blocks", "up_blocks", "mid_block"):
        return f"{kind}.{numbers[0]}.attentions.{numbers[-1]}" if kind != "mid_block" else "mid_block.attentions.0"
    return ".".join(str(part) for part in (kind, *numbers, 1))


# --- VAE ------------------------------------------------------------------------------------------------------


def check_vae(path: Path, shape: ModelShape | None, config: Mapping[str, Any] | None = None) -> None:
    """ExtraFileError when the VAE file at ``path`` (a diffusers folder's weights with its ``config``) is not
    whole or makes latents of another shape than ``shape``'s VAE."""
    shapes = header_shapes("VAE", path)
    if config is not None:
        channels = config.get("latent_channels")
        blocks = config.get("block_out_channels")
        facts = (channels if isinstance(channels, int) else None, len(blocks) if isinstance(blocks, list) else None)
    else:
        facts = _remembered("vae", path, lambda: _vae_facts(path, shapes))
    if shape is None:
        return
    channels, levels = facts
    label = f"VAE {path.parent.name if config is not None else path.name}"
    if channels is not None and shape.latent_channels is not None and channels != shape.latent_channels:
        raise ExtraFileError(
            f"{label} has {channels} latent channels and the VAE of {shape.describe()} {shape.latent_channels}: "
            "a VAE of another model family"
        )
    if levels is not None and shape.vae_levels is not None and levels != shape.vae_levels:
        raise ExtraFileError(
            f"{label} has {levels} down blocks and the VAE of {shape.describe()} {shape.vae_levels}: "
            "a VAE of another model family"
        )


def _vae_facts(path: Path, shapes: Mapping[str, list[int]]) -> tuple[int | None, int | None]:
    # The LDM layout (A1111's VAEs, sometimes still under a checkpoint's prefix) or diffusers'.
    names = {name.removeprefix("first_stage_model."): size for name, size in shapes.items()}
    conv_out = names.get("encoder.conv_out.weight")
    if conv_out is None:
        raise ExtraFileError(f"VAE {path.name}: no encoder.conv_out weight; this is not an AutoencoderKL VAE")
    levels = {name.split(".")[2] for name in names if name.startswith(("encoder.down.", "encoder.down_blocks."))}
    return conv_out[0] // 2, len(levels) or None  # the encoder outputs a mean and a log-variance per channel


# --- embedding ------------------------------------------------------------------------------------------------


def check_embedding(path: Path, shape: ModelShape | None) -> None:
    """ExtraFileError when the embedding at ``path`` is not whole or its vectors do not fit ``shape``'s text
    encoders (the formats ti_embeddings.py loads: ``emb_params``, SDXL's ``clip_l``/``clip_g``, one tensor)."""
    shapes = header_shapes("embedding", path)
    if shape is None or not shape.text_widths:
        return
    if len(shape.text_widths) == 2:
        missing = [key for key in ("clip_l", "clip_g") if key not in shapes]
        if missing:
            raise ExtraFileError(
                f"embedding {path.name}: {shape.describe()} needs 'clip_l' and 'clip_g' vectors; the file has "
                f"{', '.join(sorted(shapes)[:4]) or 'no tensors'} (an embedding for another model family?)"
            )
        vectors = [("clip_l", shapes["clip_l"]), ("clip_g", shapes["clip_g"])]
    elif "clip_l" in shapes:
        vectors = [("clip_l", shapes["clip_l"])]
    elif "emb_params" in shapes or len(shapes) == 1:
        key = "emb_params" if "emb_params" in shapes else next(iter(shapes))
        vectors = [(key, shapes[key])]
    else:
        raise ExtraFileError(
            f"embedding {path.name}: expected one tensor ('emb_params' or the token's), found {sorted(shapes)[:4]}"
        )
    for (key, tensor_shape), width in zip(vectors, shape.text_widths, strict=False):
        if len(tensor_shape) not in (1, 2) or tensor_shape[-1] != width:
            raise ExtraFileError(
                f"embedding {path.name}: {key} holds vectors of shape {tuple(tensor_shape)}, but the text encoder "
                f"of {shape.describe()} takes width {width} (an embedding for another model family?)"
            )
