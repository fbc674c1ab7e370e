"""The work an import may do is bounded: the inflated text, the graph's size, and the steps its walks take grow
linearly with the graph (issue 9: a 60 KB PNG once cost 40 minutes of CPU)."""

from __future__ import annotations

import contextlib
import json
import zlib

import pytest
from cauldron_comfyui.importer import MAX_LINKS, MAX_NODE_INPUTS, MAX_NODES, ImportBudget, import_file
from cauldron_comfyui.png_chunks import MAX_TEXT_BYTES, read_text_chunks
from comfyui_bombs import bomb_png, many_heads_prompt, reroute_chain_workflow, tiny_png, ztxt


def as_json(document: object) -> bytes:
    return json.dumps(document).encode("utf-8")


def test_the_probe_png_is_refused_before_any_graph_work() -> None:
    content = bomb_png()
    assert len(content) < 64 * 1024  # it fits in one imports.run request
    budget = ImportBudget()
    with pytest.raises(ValueError, match="inflates past"):
        import_file(content, "bomb.png", budget)
    assert budget.steps == 0


def test_only_the_workflow_chunks_are_inflated() -> None:
    # A huge unrelated zTXt chunk beside a small workflow: it is skipped, not inflated.
    big = "x" * (MAX_TEXT_BYTES + 1)
    content = tiny_png(ztxt("comment", big), ztxt("prompt", json.dumps(many_heads_prompt(1, 0))))
    assert read_text_chunks(content, keywords=("prompt",)).keys() == {"prompt"}
    assert import_file(content, "x.png")[0]["prompt"] == "a cat"
    with pytest.raises(ValueError, match="inflates past"):
        read_text_chunks(content)


def test_text_spread_over_many_chunks_is_bounded_in_all() -> None:
    part = "y" * (MAX_TEXT_BYTES - 10)
    content = tiny_png(*(ztxt(f"k{i}", part) for i in range(3)))
    with pytest.raises(ValueError, match="in all"):
        read_text_chunks(content)


def steps_for(document: object) -> int:
    budget = ImportBudget()
    # These graphs are not plain txt2img; the work spent finding that out is what is measured.
    with contextlib.suppress(ValueError):
        import_file(as_json(document), "x.json", budget)
    return budget.steps


def test_a_reroute_chain_costs_linear_steps() -> None:
    # Following the chain afresh for each reroute and each of the 100 inputs reading its end would take
    # about chain²/2 + 100 × chain steps: 1.28 M for 1,500. Linear: a few per node and link.
    small, large = reroute_chain_workflow(750, MAX_NODE_INPUTS), reroute_chain_workflow(1_500, MAX_NODE_INPUTS)
    size = len(large["nodes"]) + len(large["links"])
    steps_small, steps_large = steps_for(small), steps_for(large)
    assert steps_large <= 5 * size
    assert steps_large <= 2.2 * steps_small  # twice the graph, about twice the work


def test_many_outputs_over_a_long_chain_cost_linear_steps() -> None:
    # 900 SaveImage heads whose upstream includes a 900-node chain: walking it again per head is 0.8 M steps.
    graph = many_heads_prompt(heads=900, chain=900)
    budget = ImportBudget()
    found = import_file(as_json(graph), "x.json", budget)
    assert [cell["prompt"] for cell in found] == ["a cat"]
    assert budget.steps <= 5 * len(graph)


@pytest.mark.parametrize(
    ("document", "what"),
    [
        ({"nodes": [{"id": i, "type": "Note"} for i in range(MAX_NODES + 1)], "links": []}, "nodes"),
        ({"nodes": [], "links": [[i, 1, 0, 2, 0, "X"] for i in range(MAX_LINKS + 1)]}, "links"),
        (many_heads_prompt(heads=MAX_NODES, chain=0), "nodes"),
        ({"1": {"class_type": "X", "inputs": {f"i{n}": 1 for n in range(MAX_NODE_INPUTS + 1)}}}, "inputs"),
    ],
)
def test_oversized_graphs_are_refused_by_count(document: object, what: str) -> None:
    budget = ImportBudget()
    with pytest.raises(ValueError, match=f"at most .* {what}|{what}.*at most|has .* {what}"):
        import_file(as_json(document), "big.json", budget)
    assert budget.steps == 0


def test_the_step_budget_stops_a_walk() -> None:
    budget = ImportBudget(max_steps=100)
    with pytest.raises(ValueError, match="more than 100 steps"):
        import_file(as_json(reroute_chain_workflow(500, 1)), "x.json", budget)


def test_a_reroute_loop_is_unconnected_not_endless() -> None:
    workflow = {
        "nodes": [
            {"id": 1, "type": "Reroute", "inputs": [{"type": "*", "link": 2}]},
            {"id": 2, "type": "Reroute", "inputs": [{"type": "*", "link": 1}]},
            {"id": 3, "type": "SaveImage", "inputs": [{"name": "images", "type": "IMAGE", "link": 1}]},
        ],
        "links": [[1, 2, 0, 1, 0, "*"], [2, 1, 0, 2, 0, "*"]],
    }
    with pytest.raises(ValueError, match="no 'images' input connected"):
        import_file(as_json(workflow), "loop.json")


def test_deep_nesting_is_a_value_error() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ValueError):
        import_file(deep, "deep.json")
    with pytest.raises(ValueError):
        import_file(tiny_png(ztxt("prompt", "[" * 100_000)), "deep.png")
    assert zlib  # the module builds its PNGs by hand
