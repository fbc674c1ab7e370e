"""The txt2img graph one image's params describe, independent of ComfyUI's two file formats.

Both exporters render this graph (``export_api``, ``export_ui``) and the importer reads ComfyUI files back
through the same node descriptions, so slot order and widget order are written down once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cauldron_comfyui.mapping import to_ckpt_name, to_comfy_sampler
from cauldrond.params import RANDOM_SEED, GenerationParams


@dataclass(frozen=True)
class NodeType:
    """What ComfyUI's node class looks like from outside: linked inputs and outputs in slot order as
    ``(name, type)``, and widget names in the order the UI format stores ``widgets_values``."""

    inputs: tuple[tuple[str, str], ...]
    outputs: tuple[tuple[str, str], ...]
    widgets: tuple[str, ...]
    size: tuple[float, float]


# The KSampler's seed widget is followed by the UI-only "control after generate" widget in widgets_values.
SEED_CONTROL = "control_after_generate"

NODE_TYPES: dict[str, NodeType] = {
    "CheckpointLoaderSimple": NodeType(
        (), (("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")), ("ckpt_name",), (315, 98)
    ),
    "CLIPSetLastLayer": NodeType((("clip", "CLIP"),), (("CLIP", "CLIP"),), ("stop_at_clip_layer",), (315, 58)),
    "CLIPTextEncode": NodeType((("clip", "CLIP"),), (("CONDITIONING", "CONDITIONING"),), ("text",), (425, 180)),
    "EmptyLatentImage": NodeType((), (("LATENT", "LATENT"),), ("width", "height", "batch_size"), (315, 106)),
    "KSampler": NodeType(
        (("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"), ("latent_image", "LATENT")),
        (("LATENT", "LATENT"),),
        ("seed", SEED_CONTROL, "steps", "cfg", "sampler_name", "scheduler", "denoise"),
        (315, 262),
    ),
    "VAEDecode": NodeType((("samples", "LATENT"), ("vae", "VAE")), (("IMAGE", "IMAGE"),), (), (210, 46)),
    "SaveImage": NodeType((("images", "IMAGE"),), (), ("filename_prefix",), (315, 270)),
    "PreviewImage": NodeType((("images", "IMAGE"),), (), (), (315, 250)),
}


@dataclass(frozen=True)
class GraphNode:
    id: int
    class_type: str
    widgets: dict[str, Any]
    links: dict[str, tuple[int, int]]  # input name -> (source node id, source output slot)
    pos: tuple[int, int]
    title: str = ""

    @property
    def node_type(self) -> NodeType:
        return NODE_TYPES[self.class_type]


def normalise_params(params: Mapping[str, Any], seed: int | None = None) -> GenerationParams:
    """Validated params; a random seed (-1) is replaced by ``seed``, the seed the image was actually made with.

    An image's stored params already carry the drawn seed; ``seed`` covers records that kept -1."""
    validated = GenerationParams.model_validate(dict(params))
    if validated.seed == RANDOM_SEED:
        if seed is None or seed == RANDOM_SEED:
            raise ValueError("the params have a random seed (-1); ComfyUI needs the seed the image was made with")
        validated = validated.with_seed(seed)
    return validated


def build_graph(params: GenerationParams, filename_prefix: str = "cauldron") -> list[GraphNode]:
    """The ComfyUI txt2img graph for ``params``, in execution order.

    Node ids follow ComfyUI's default workflow (3 KSampler, 4 checkpoint, 5 latent, 6/7 prompts, 8 decode,
    9 save) so the export looks familiar; clip skip adds node 10 between the checkpoint and both encoders."""
    if params.eta:
        # The KSampler has no eta; only our DDIM uses it, and ComfyUI's ddim is the deterministic (eta 0) one.
        raise ValueError(f"eta {params.eta:g} has no ComfyUI equivalent (KSampler has no eta); set eta to 0")
    if params.loras or params.vae:
        # Refused rather than dropped: a workflow without them would make another image.
        raise ValueError("LoRAs and VAE overrides are not written into ComfyUI workflows yet")
    sampler_name, scheduler = to_comfy_sampler(params.sampler, params.schedule)
    clip_source = (4, 1)
    nodes = [
        GraphNode(4, "CheckpointLoaderSimple", {"ckpt_name": to_ckpt_name(params.model)}, {}, (26, 474)),
        GraphNode(
            5, "EmptyLatentImage", {"width": params.width, "height": params.height, "batch_size": 1}, {}, (473, 609)
        ),
    ]
    if params.clip_skip > 1:
        nodes.append(
            GraphNode(10, "CLIPSetLastLayer", {"stop_at_clip_layer": -params.clip_skip}, {"clip": (4, 1)}, (26, 300))
        )
        clip_source = (10, 0)
    nodes += [
        GraphNode(6, "CLIPTextEncode", {"text": params.prompt}, {"clip": clip_source}, (415, 186), "Positive prompt"),
        GraphNode(
            7, "CLIPTextEncode", {"text": params.negative_prompt}, {"clip": clip_source}, (413, 389), "Negative prompt"
        ),
        GraphNode(
            3,
            "KSampler",
            {
                "seed": params.seed,
                SEED_CONTROL: "fixed",  # "randomize" would draw a new seed after the first run in ComfyUI
                "steps": params.steps,
                "cfg": params.cfg_scale,
                "sampler_name": sampler_name,
                "scheduler": scheduler,
                "denoise": 1.0,
            },
            {"model": (4, 0), "positive": (6, 0), "negative": (7, 0), "latent_image": (5, 0)},
            (863, 186),
        ),
        GraphNode(8, "VAEDecode", {}, {"samples": (3, 0), "vae": (4, 2)}, (1209, 188)),
        GraphNode(9, "SaveImage", {"filename_prefix": filename_prefix}, {"images": (8, 0)}, (1451, 189)),
    ]
    return nodes
