"""ComfyUI files back to generation params: API-format JSON, UI-format JSON, or a PNG with ComfyUI's chunks.

Everything is first brought into the API format (the graph ComfyUI executes), then each image output is
followed upstream through VAEDecode and KSampler to its prompts, latent and checkpoint. Only the plain txt2img
graph our exporter writes can be expressed as params; anything else is refused with the node types at fault.

Uploads are untrusted, so the work an import may do is bounded: the inflated text (``png_chunks``), the numbers
of nodes, links and inputs per node, and the steps taken (``ImportBudget``); every walk over the graph visits
each node and link a bounded number of times (a 3,000-node chain once made it quadratic; issue 9)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from cauldron_comfyui.graph import NODE_TYPES, SEED_CONTROL
from cauldron_comfyui.mapping import from_ckpt_name, from_comfy_sampler
from cauldron_comfyui.png_chunks import PNG_SIGNATURE, read_text_chunks
from cauldrond.params import MAX_SEED, GenerationParams

OUTPUT_TYPES = ("SaveImage", "PreviewImage")
# Nodes that exist only in the editor: ComfyUI drops them (after copying their values) before it executes.
UI_ONLY_TYPES = {"Note", "MarkdownNote", "PrimitiveNode", "Reroute"}
MUTED = 2  # LiteGraph node mode "never": the node and what only it feeds are not executed
BYPASSED = 4  # the node is skipped: each output is fed by its first input of the same type

ApiGraph = dict[str, dict[str, Any]]

# A big real workflow has a few hundred nodes; the graphs we can map have fewer than a dozen.
MAX_NODES = 2_000
MAX_LINKS = 10_000
MAX_NODE_INPUTS = 100
# Steps (a node or link visited) and seconds one import may take; far above any real workflow's needs.
MAX_STEPS = 1_000_000
TIME_BUDGET_S = 5.0


class ImportBudget:
    """Counts the steps an import takes and stops it past ``max_steps`` or ``seconds``."""

    def __init__(self, max_steps: int = MAX_STEPS, seconds: float = TIME_BUDGET_S) -> None:
        self.max_steps = max_steps
        self.steps = 0
        self._deadline = time.monotonic() + seconds
        self._seconds = seconds

    def step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > self.max_steps:
            raise ValueError(f"the ComfyUI workflow needs more than {self.max_steps} steps to read; refused")
        if self.steps % 4096 < count and time.monotonic() > self._deadline:
            raise ValueError(f"the ComfyUI workflow took more than {self._seconds:g} s to read; refused")


def import_file(content: bytes, filename: str = "", budget: ImportBudget | None = None) -> list[dict[str, Any]]:
    """One params dict (the fields of ``GenerationParams``) per KSampler that feeds an image output.

    Raises ``ValueError`` for anything else, including JSON of the right outline but the wrong shapes inside
    (uploads are untrusted: no other exception type escapes)."""
    budget = budget if budget is not None else ImportBudget()
    try:
        return graph_to_params(load_graph(content, filename, budget), budget)
    except (KeyError, TypeError, AttributeError, IndexError, RecursionError) as error:
        raise ValueError(f"malformed ComfyUI workflow in {filename or 'the file'}: {error!r}"[:500]) from error


def load_graph(content: bytes, filename: str = "", budget: ImportBudget | None = None) -> ApiGraph:
    """The API-format graph in a ComfyUI JSON file (either format) or a PNG that ComfyUI saved."""
    name = filename or "the file"
    budget = budget if budget is not None else ImportBudget()
    if content.startswith(PNG_SIGNATURE):
        # "prompt" is the graph that actually ran; "workflow" is the editor's view of it. Only these two are
        # inflated: any other text chunk is skipped unread.
        texts = read_text_chunks(content, keywords=("prompt", "workflow"))
        for key in ("prompt", "workflow"):
            if key in texts:
                document = _parse_json(texts[key].encode("utf-8"), f"the {key!r} chunk of {name}")
                return parse_workflow(document, budget)
        raise ValueError(f"{name} is a PNG without ComfyUI's 'prompt' or 'workflow' text chunk")
    return parse_workflow(_parse_json(content, name), budget)


def _parse_json(content: bytes, name: str) -> Any:
    try:
        return json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{name} is neither a PNG nor ComfyUI workflow JSON: {error}"[:500]) from error


def parse_workflow(data: Any, budget: ImportBudget | None = None) -> ApiGraph:
    """API-format graph for a decoded JSON document in either of ComfyUI's formats."""
    budget = budget if budget is not None else ImportBudget()
    if isinstance(data, dict) and isinstance(data.get("nodes"), list):
        _check_ui_size(data)
        return ui_to_api(data, budget)
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict) and "class_type" not in data["prompt"]:
        data = data["prompt"]  # the body of POST /prompt wraps the graph
    if isinstance(data, dict) and data and all(isinstance(n, dict) and "class_type" in n for n in data.values()):
        _check_count("nodes", len(data), MAX_NODES)
        for key, node in data.items():
            inputs = node.get("inputs")
            _check_count(
                f"inputs of node {str(key)[:40]}", len(inputs) if isinstance(inputs, dict) else 0, MAX_NODE_INPUTS
            )
        return {str(key): node for key, node in data.items()}
    raise ValueError(
        "not a ComfyUI workflow: expected the API format ({id: {class_type, inputs}}) "
        "or the UI format (an object with nodes and links)"
    )


def _check_count(what: str, count: int, limit: int) -> None:
    if count > limit:
        raise ValueError(f"the ComfyUI workflow has {count} {what}; at most {limit} are read")


def _check_ui_size(workflow: Mapping[str, Any]) -> None:
    _check_count("nodes", len(workflow["nodes"]), MAX_NODES)
    links = workflow.get("links") or []
    _check_count("links", len(links) if isinstance(links, list) else 0, MAX_LINKS)
    for node in workflow["nodes"]:
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if isinstance(inputs, list) and len(inputs) > MAX_NODE_INPUTS:
            _check_count(f"inputs on node {str(node.get('id'))[:40]}", len(inputs), MAX_NODE_INPUTS)


def ui_to_api(workflow: Mapping[str, Any], budget: ImportBudget | None = None) -> ApiGraph:
    """The graph a UI-format workflow executes, as ComfyUI builds it: UI-only and muted nodes dropped, reroutes
    followed, widget values named after the node's inputs."""
    budget = budget if budget is not None else ImportBudget()
    nodes = {node["id"]: node for node in workflow["nodes"] if isinstance(node, dict) and "id" in node}
    links = _link_table(workflow.get("links") or [])
    sources = _LinkSources(nodes, links, budget)

    graph: ApiGraph = {}
    for node_id, node in nodes.items():
        budget.step()
        class_type = str(node.get("type", ""))
        if class_type in UI_ONLY_TYPES or node.get("mode") == MUTED:
            continue
        inputs = _widget_inputs(node_id, class_type, node.get("widgets_values"))
        for entry in node.get("inputs") or []:
            budget.step()
            source = sources.resolve(entry.get("link"))
            if source is None:
                continue
            source_type = nodes[source[0]].get("type")
            if entry.get("widget") and source_type in UI_ONLY_TYPES:
                continue  # a primitive feeding a widget: its value is already in widgets_values
            inputs[str(entry.get("name"))] = [str(source[0]), source[1]]
        graph[str(node_id)] = {"class_type": class_type, "inputs": inputs}
    return graph


class _LinkSources:
    """Which real node feeds a link, through reroutes and bypassed nodes. Every link is resolved once and
    remembered, and so is every node's pass-through, so a chain of n reroutes costs n steps in all, not n per
    input that reads from its end."""

    _UNRESOLVED = object()

    def __init__(self, nodes: Mapping[Any, Any], links: Mapping[Any, tuple[Any, int]], budget: ImportBudget) -> None:
        self._nodes = nodes
        self._links = links
        self._budget = budget
        self._resolved: dict[Any, tuple[Any, int] | None] = {}
        self._passes: dict[tuple[Any, int], Any] = {}

    def resolve(self, link_id: Any) -> tuple[Any, int] | None:
        if not _hashable(link_id):
            return None
        path: list[Any] = []
        on_path: set[Any] = set()
        answer: Any = self._UNRESOLVED
        while answer is self._UNRESOLVED:
            self._budget.step()
            if link_id in self._resolved:
                answer = self._resolved[link_id]
            elif link_id not in self._links or link_id in on_path:
                answer = None  # a dangling link, or a loop of reroutes: unconnected
            else:
                path.append(link_id)
                on_path.add(link_id)
                node_id, slot = self._links[link_id]
                node = self._nodes.get(node_id) if _hashable(node_id) else None
                if node is None or node.get("mode") == MUTED:
                    answer = None  # as in ComfyUI, an input fed by a muted node is unconnected
                elif node.get("type") != "Reroute" and node.get("mode") != BYPASSED:
                    answer = (node_id, slot)
                else:
                    link_id = self._pass_through(node_id, node, slot)
                    if not _hashable(link_id):
                        answer = None
        for visited in path:
            self._resolved[visited] = answer
        result: tuple[Any, int] | None = answer
        return result

    def _pass_through(self, node_id: Any, node: Mapping[str, Any], slot: Any) -> Any:
        key = (node_id, slot)
        if key not in self._passes:
            self._budget.step(len(node.get("inputs") or []) + 1)
            self._passes[key] = _pass_through(node, slot)
        return self._passes[key]


def _hashable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | None)


def _pass_through(node: Mapping[str, Any], slot: int) -> Any:
    """The link feeding a reroute or a bypassed node's output ``slot``: its (first) input of the same type."""
    inputs = [entry for entry in node.get("inputs") or [] if entry.get("link") is not None]
    if node.get("type") == "Reroute":
        return inputs[0]["link"] if inputs else None
    outputs = node.get("outputs") or []
    kind = outputs[slot].get("type") if isinstance(slot, int) and 0 <= slot < len(outputs) else None
    return next((entry["link"] for entry in inputs if entry.get("type") == kind), None)


def _link_table(raw: list[Any]) -> dict[Any, tuple[Any, int]]:
    table: dict[Any, tuple[Any, int]] = {}
    for link in raw:
        # Schema 0.4 stores [id, from node, from slot, to node, to slot, type]; schema 1 stores objects.
        if isinstance(link, list) and len(link) >= 5:
            table[link[0]] = (link[1], link[2])
        elif isinstance(link, dict) and {"id", "origin_id", "origin_slot"} <= link.keys():
            table[link["id"]] = (link["origin_id"], link["origin_slot"])
    return table


def _widget_inputs(node_id: Any, class_type: str, values: Any) -> dict[str, Any]:
    node_type = NODE_TYPES.get(class_type)
    if node_type is None or values is None:
        return {}  # unknown nodes are only reported by type; their widgets do not matter
    if isinstance(values, dict):
        return {name: values[name] for name in node_type.widgets if name in values}
    names = list(node_type.widgets)
    if not isinstance(values, list) or len(values) < len(names) - (SEED_CONTROL in names):
        raise ValueError(f"node {node_id} ({class_type}) has widgets_values {values!r}; expected {names}")
    if len(values) == len(names) - 1:
        names.remove(SEED_CONTROL)  # saved without the "control after generate" widget
    # Newer ComfyUI versions append widgets (SaveImage gained one); the ones we read keep their places.
    inputs = dict(zip(names, values[: len(names)], strict=True))
    inputs.pop(SEED_CONTROL, None)  # "randomize" or not, the stored seed is the one that made the image
    return inputs


def graph_to_params(graph: ApiGraph, budget: ImportBudget | None = None) -> list[dict[str, Any]]:
    budget = budget if budget is not None else ImportBudget()
    heads = sorted((key for key, node in graph.items() if node.get("class_type") in OUTPUT_TYPES), key=_id_order)
    if not heads:
        types = ", ".join(sorted({str(node.get("class_type"))[:60] for node in graph.values()})[:20]) or "none"
        raise ValueError(f"the ComfyUI graph has no SaveImage or PreviewImage node (node types: {types})")
    results: list[dict[str, Any]] = []
    seen_samplers: set[str] = set()
    visited: set[str] = set()
    for head in heads:
        # Each head walks only what earlier heads did not reach (those parts were already checked), so all the
        # heads together visit each node once.
        unknown = sorted(
            {graph[key]["class_type"] for key in _upstream(graph, head, visited, budget)} - NODE_TYPES.keys()
        )
        if unknown:
            raise ValueError(
                f"not a plain txt2img graph: cannot map the ComfyUI node types {', '.join(unknown)} "
                f"(feeding output node {head}) to cauldron params"
            )
        reader = _ChainReader(graph)
        decode = reader.follow(head, "images", "VAEDecode")
        sampler = reader.follow(decode, "samples", "KSampler")
        if sampler in seen_samplers:
            continue
        seen_samplers.add(sampler)
        results.append(reader.params(sampler, decode))
    return results


def _id_order(key: str) -> tuple[int, str]:
    return (int(key), key) if key.isdigit() else (1 << 62, key)


def _upstream(graph: ApiGraph, start: str, visited: set[str], budget: ImportBudget) -> set[str]:
    """Nodes feeding ``start`` that are not in ``visited`` yet (all of them are added to it)."""
    found: set[str] = set()
    pending = [start]
    while pending:
        key = pending.pop()
        budget.step()
        if key in visited:
            continue
        if key not in graph:
            raise ValueError(f"the ComfyUI graph links to node {key[:40]}, which it does not contain")
        visited.add(key)
        found.add(key)
        pending += [str(value[0]) for value in graph[key].get("inputs", {}).values() if _is_link(value)]
    return found


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str | int) and isinstance(value[1], int)


class _ChainReader:
    """Reads one KSampler chain, checking each node is the type (and slot) a plain txt2img graph has there."""

    def __init__(self, graph: ApiGraph) -> None:
        self.graph = graph

    def follow(self, key: str, name: str, expected: str, slot: int = 0) -> str:
        node = self.graph[key]
        value = node["inputs"].get(name)
        if not _is_link(value):
            raise ValueError(f"node {key} ({node['class_type']}) has no {name!r} input connected")
        source = str(value[0])
        source_type = self.graph[source]["class_type"]
        if source_type != expected or value[1] != slot:
            raise ValueError(
                f"not a plain txt2img graph: {node['class_type']} {key} takes {name!r} from {source_type} "
                f"{source} (output {value[1]}), where cauldron can only map {expected} (output {slot})"
            )
        return source

    def value(self, key: str, name: str, kind: type | tuple[type, ...]) -> Any:
        node = self.graph[key]
        if name not in node["inputs"]:
            raise ValueError(f"node {key} ({node['class_type']}) has no {name!r} value")
        value = node["inputs"][name]
        if _is_link(value):
            source_type = self.graph.get(str(value[0]), {}).get("class_type")
            raise ValueError(
                f"{node['class_type']} {key} takes {name!r} from a {source_type} node, which cannot be mapped"
            )
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(f"{node['class_type']} {key} has {name} {value!r} of the wrong type")
        return value

    def clip(self, encoder: str) -> tuple[str, int]:
        """(checkpoint node, clip skip) behind one CLIPTextEncode."""
        source = str(self.graph[encoder]["inputs"].get("clip", [""])[0])
        if self.graph.get(source, {}).get("class_type") != "CLIPSetLastLayer":
            return self.follow(encoder, "clip", "CheckpointLoaderSimple", 1), 1
        layer = self.follow(encoder, "clip", "CLIPSetLastLayer")
        stop = self.value(layer, "stop_at_clip_layer", int)
        if stop >= 0:
            raise ValueError(f"CLIPSetLastLayer {layer} has stop_at_clip_layer {stop}; cauldron maps -1 to -12")
        return self.follow(layer, "clip", "CheckpointLoaderSimple", 1), -stop

    def params(self, sampler: str, decode: str) -> dict[str, Any]:
        checkpoint = self.follow(sampler, "model", "CheckpointLoaderSimple")
        checkpoints = {checkpoint, self.follow(decode, "vae", "CheckpointLoaderSimple", 2)}
        positive = self.follow(sampler, "positive", "CLIPTextEncode")
        negative = self.follow(sampler, "negative", "CLIPTextEncode")
        (positive_ckpt, clip_skip), (negative_ckpt, negative_skip) = self.clip(positive), self.clip(negative)
        if clip_skip != negative_skip:
            raise ValueError(
                f"the prompts of KSampler {sampler} use different clip skips ({clip_skip}, {negative_skip})"
            )
        checkpoints |= {positive_ckpt, negative_ckpt}
        names = {self.value(key, "ckpt_name", str) for key in checkpoints}
        if len(names) > 1:
            raise ValueError(f"KSampler {sampler} mixes checkpoints {sorted(names)}; cauldron uses one model per image")
        latent = self.follow(sampler, "latent_image", "EmptyLatentImage")
        denoise = self.value(sampler, "denoise", (int, float))
        if denoise != 1:
            raise ValueError(f"KSampler {sampler} has denoise {denoise}; cauldron's txt2img needs denoise 1.0")
        seed = self.value(sampler, "seed", int)
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(
                f"KSampler {sampler} has seed {seed}, outside cauldron's range 0..{MAX_SEED}; "
                "set a smaller seed in ComfyUI to import it"
            )
        sampler_name, schedule = from_comfy_sampler(
            self.value(sampler, "sampler_name", str), self.value(sampler, "scheduler", str)
        )
        fields = {
            "prompt": self.value(positive, "text", str),
            "negative_prompt": self.value(negative, "text", str),
            "model": from_ckpt_name(names.pop()),
            "sampler": sampler_name,
            "schedule": schedule,
            "steps": self.value(sampler, "steps", int),
            "cfg_scale": float(self.value(sampler, "cfg", (int, float))),
            "seed": seed,
            "width": self.value(latent, "width", int),
            "height": self.value(latent, "height", int),
            "clip_skip": clip_skip,
        }
        try:
            return GenerationParams.model_validate(fields).to_json_dict()
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise ValueError(f"KSampler {sampler} gives params cauldron cannot use: {problems}") from error
