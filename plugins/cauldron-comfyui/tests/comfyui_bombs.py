"""Hostile ComfyUI files for the import bounds tests (and the daemon's abuse tests): built by hand from the PNG
specification and ComfyUI's UI/API formats, not with the plugin's own writers."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def tiny_png(*extra_chunks: bytes) -> bytes:
    """A 1x1 grey PNG with ``extra_chunks`` before its image data."""
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    pixels = chunk(b"IDAT", zlib.compress(b"\x00\x80"))
    return PNG_SIGNATURE + header + b"".join(extra_chunks) + pixels + chunk(b"IEND", b"")


def ztxt(keyword: str, text: str) -> bytes:
    return chunk(b"zTXt", keyword.encode("latin-1") + b"\x00\x00" + zlib.compress(text.encode("latin-1"), 9))


def reroute_chain_workflow(chain: int, fan_in: int) -> dict[str, Any]:
    """A UI-format workflow: ``chain`` Reroute nodes in a row, and one node whose ``fan_in`` inputs all read the
    end of the chain. Following the chain afresh for every input costs chain × (chain + fan_in) steps."""
    nodes: list[dict[str, Any]] = []
    links: list[list[Any]] = []
    nodes.append({"id": 1, "type": "CheckpointLoaderSimple", "mode": 0, "inputs": [], "widgets_values": ["m.ckpt"]})
    previous = (1, 0)
    for index in range(chain):
        node_id = 2 + index
        link_id = len(links) + 1
        links.append([link_id, previous[0], previous[1], node_id, 0, "MODEL"])
        nodes.append({"id": node_id, "type": "Reroute", "inputs": [{"type": "*", "link": link_id}]})
        previous = (node_id, 0)
    sink = 2 + chain
    inputs = []
    for slot in range(fan_in):
        link_id = len(links) + 1
        links.append([link_id, previous[0], 0, sink, slot, "MODEL"])
        inputs.append({"name": f"in{slot}", "type": "MODEL", "link": link_id})
    nodes.append({"id": sink, "type": "SomeCustomNode", "mode": 0, "inputs": inputs})
    return {"nodes": nodes, "links": links, "version": 0.4}


def bomb_png(chain: int = 3_000, links: int = 440_000) -> bytes:
    """Like the probe's file in issue 9: a zTXt workflow with a ``chain``-node reroute chain and one node with
    ``links`` links (13 MB of JSON in a PNG under the 64 KiB an RPC request may carry)."""
    workflow = reroute_chain_workflow(chain, 0)
    sink = workflow["nodes"][-1]
    # The same link over and over: it compresses about 1000:1, so the PNG stays small enough to upload.
    link = len(workflow["links"]) + 1
    workflow["links"] += [[link, chain + 1, 0, sink["id"], 0, "MODEL"]] * links
    sink["inputs"] = [{"name": "x", "type": "MODEL", "link": link}]
    return tiny_png(ztxt("workflow", json.dumps(workflow, separators=(",", ":"))))


def many_heads_prompt(heads: int, chain: int) -> dict[str, Any]:
    """An API-format graph with one plain txt2img chain, ``heads`` SaveImage nodes reading its VAEDecode, and a
    ``chain``-long CLIPSetLastLayer chain hanging off every head's extra input (known node types, so each head's
    upstream walk covers it: heads × chain steps when every head walks it again)."""
    graph: dict[str, Any] = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-sd.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 5,
                "steps": 4,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1.0,
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    }
    previous = ["4", 1]
    for index in range(chain):
        key = f"c{index}"
        graph[key] = {"class_type": "CLIPSetLastLayer", "inputs": {"stop_at_clip_layer": -1, "clip": previous}}
        previous = [key, 0]
    for index in range(heads):
        graph[str(100 + index)] = {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "extra": previous}}
    return graph
