"""ComfyUI's API format: ``{"<id>": {"class_type": ..., "inputs": {...}}}``, what ``POST /prompt`` runs and
what SaveImage stores in a PNG's ``prompt`` chunk. Links are ``["<source id>", output slot]``; widget
values are inputs by name, without the UI-only "control after generate" choice."""

from __future__ import annotations

from typing import Any

from cauldron_comfyui.graph import SEED_CONTROL, GraphNode


def to_api(nodes: list[GraphNode]) -> dict[str, Any]:
    prompt: dict[str, Any] = {}
    for node in nodes:
        inputs: dict[str, Any] = {name: value for name, value in node.widgets.items() if name != SEED_CONTROL}
        for name, (source, slot) in node.links.items():
            inputs[name] = [str(source), slot]
        # ComfyUI's own API exports title every node, and its frontend's schema requires it on a dropped file.
        meta = {"title": node.title or node.class_type}
        prompt[str(node.id)] = {"class_type": node.class_type, "inputs": inputs, "_meta": meta}
    return prompt
