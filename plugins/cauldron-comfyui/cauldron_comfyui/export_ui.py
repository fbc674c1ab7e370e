"""ComfyUI's UI format: what "Save" writes and what dropping a file onto ComfyUI loads (LiteGraph's
serialisation, ``version`` 0.4). Each link is listed once as ``[link id, from node, from slot, to node, to slot,
type]`` and referenced by id from both ends: the target's ``inputs[].link`` and the source's
``outputs[].links``."""

from __future__ import annotations

from typing import Any

from cauldron_comfyui.graph import GraphNode

UI_FORMAT_VERSION = 0.4


def to_ui(nodes: list[GraphNode]) -> dict[str, Any]:
    by_id = {node.id: node for node in nodes}
    links: list[list[Any]] = []
    incoming: dict[tuple[int, str], int] = {}  # (target id, input name) -> link id
    outgoing: dict[tuple[int, int], list[int]] = {}  # (source id, output slot) -> link ids
    for node in nodes:
        for name, kind in node.node_type.inputs:
            if name not in node.links:
                continue
            source, slot = node.links[name]
            link_id = len(links) + 1
            target_slot = [input_name for input_name, _ in node.node_type.inputs].index(name)
            links.append([link_id, source, slot, node.id, target_slot, kind])
            incoming[(node.id, name)] = link_id
            outgoing.setdefault((source, slot), []).append(link_id)
            if source not in by_id:
                raise AssertionError(f"node {node.id} links to missing node {source}")

    ui_nodes = []
    for order, node in enumerate(nodes):
        entry: dict[str, Any] = {
            "id": node.id,
            "type": node.class_type,
            "pos": list(node.pos),
            "size": list(node.node_type.size),
            "flags": {},
            "order": order,
            "mode": 0,
            "inputs": [
                {"name": name, "type": kind, "link": incoming.get((node.id, name))}
                for name, kind in node.node_type.inputs
            ],
            "outputs": [
                {"name": name, "type": kind, "links": outgoing.get((node.id, slot), []), "slot_index": slot}
                for slot, (name, kind) in enumerate(node.node_type.outputs)
            ],
            "properties": {"Node name for S&R": node.class_type},
            "widgets_values": [node.widgets[name] for name in node.node_type.widgets],
        }
        if node.title:
            entry["title"] = node.title
        ui_nodes.append(entry)

    return {
        "last_node_id": max(by_id),
        "last_link_id": len(links),
        "nodes": ui_nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {},
        "version": UI_FORMAT_VERSION,
    }
