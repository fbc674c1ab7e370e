"""The exported graphs: API format and UI format, checked structurally as ComfyUI would read them."""

from __future__ import annotations

from typing import Any

import pytest
from cauldron_comfyui.plugin import workflow_for
from comfyui_fixtures import params

OUTPUT_SLOTS = {
    "CheckpointLoaderSimple": ["MODEL", "CLIP", "VAE"],
    "CLIPSetLastLayer": ["CLIP"],
    "CLIPTextEncode": ["CONDITIONING"],
    "EmptyLatentImage": ["LATENT"],
    "KSampler": ["LATENT"],
    "VAEDecode": ["IMAGE"],
    "SaveImage": [],
}
# What each linked input must receive, by ComfyUI type.
INPUT_TYPES = {
    "clip": "CLIP",
    "model": "MODEL",
    "positive": "CONDITIONING",
    "negative": "CONDITIONING",
    "latent_image": "LATENT",
    "samples": "LATENT",
    "vae": "VAE",
    "images": "IMAGE",
}


def by_type(prompt: dict[str, Any], class_type: str) -> list[dict[str, Any]]:
    return [node for node in prompt.values() if node["class_type"] == class_type]


def test_api_format_nodes_and_values() -> None:
    _, prompt = workflow_for(params())
    assert sorted(node["class_type"] for node in prompt.values()) == sorted(
        [
            "CheckpointLoaderSimple",
            "CLIPTextEncode",
            "CLIPTextEncode",
            "EmptyLatentImage",
            "KSampler",
            "VAEDecode",
            "SaveImage",
        ]
    )
    assert by_type(prompt, "CheckpointLoaderSimple")[0]["inputs"] == {"ckpt_name": "tiny-sd.safetensors"}
    assert by_type(prompt, "EmptyLatentImage")[0]["inputs"] == {"width": 64, "height": 96, "batch_size": 1}
    sampler = by_type(prompt, "KSampler")[0]["inputs"]
    assert {key: sampler[key] for key in ("seed", "steps", "cfg", "sampler_name", "scheduler", "denoise")} == {
        "seed": 123456,
        "steps": 12,
        "cfg": 6.5,
        "sampler_name": "dpmpp_2m",
        "scheduler": "karras",
        "denoise": 1.0,
    }
    assert prompt[sampler["positive"][0]]["inputs"]["text"] == "a lighthouse at dusk, ünïcode ✓"
    assert prompt[sampler["negative"][0]]["inputs"]["text"] == "blurry, text"
    assert all(isinstance(key, str) and key.isdigit() for key in prompt)


@pytest.mark.parametrize("clip_skip", [1, 2, 4])
def test_api_links_resolve_to_the_right_node_and_slot(clip_skip: int) -> None:
    _, prompt = workflow_for(params(clip_skip=clip_skip))
    links = 0
    for node in prompt.values():
        for name, value in node["inputs"].items():
            if name in INPUT_TYPES:
                source_id, slot = value
                assert isinstance(source_id, str) and source_id in prompt
                assert OUTPUT_SLOTS[prompt[source_id]["class_type"]][slot] == INPUT_TYPES[name]
                links += 1
    assert links == (10 if clip_skip > 1 else 9)


def test_clip_skip_adds_clip_set_last_layer_before_both_prompts() -> None:
    _, prompt = workflow_for(params(clip_skip=2))
    (layer_id,) = [key for key, node in prompt.items() if node["class_type"] == "CLIPSetLastLayer"]
    assert prompt[layer_id]["inputs"]["stop_at_clip_layer"] == -2
    assert [node["inputs"]["clip"] for node in by_type(prompt, "CLIPTextEncode")] == [[layer_id, 0], [layer_id, 0]]
    _, plain = workflow_for(params(clip_skip=1))
    assert not by_type(plain, "CLIPSetLastLayer")


@pytest.mark.parametrize("clip_skip", [1, 3])
def test_ui_format_links_appear_at_both_ends(clip_skip: int) -> None:
    workflow, prompt = workflow_for(params(clip_skip=clip_skip))
    nodes = {node["id"]: node for node in workflow["nodes"]}
    assert workflow["version"] == 0.4
    assert workflow["last_node_id"] == max(nodes)
    assert workflow["last_link_id"] == max(link[0] for link in workflow["links"])
    assert len({link[0] for link in workflow["links"]}) == len(workflow["links"])
    for link_id, source, source_slot, target, target_slot, kind in workflow["links"]:
        output = nodes[source]["outputs"][source_slot]
        target_input = nodes[target]["inputs"][target_slot]
        assert link_id in output["links"] and output["type"] == kind and output["slot_index"] == source_slot
        assert target_input["link"] == link_id and target_input["type"] == kind
    # Nothing refers to a link that is not listed, and every input of the graph is connected.
    listed = {link[0] for link in workflow["links"]}
    for node in nodes.values():
        assert all(entry["link"] in listed for entry in node["inputs"])
        assert all(set(entry["links"]) <= listed for entry in node["outputs"])
    # Same graph as the API format: same ids and types.
    assert {str(key): node["type"] for key, node in nodes.items()} == {
        key: node["class_type"] for key, node in prompt.items()
    }
    # Execution order is a topological order.
    for _, source, _, target, _, _ in workflow["links"]:
        assert nodes[source]["order"] < nodes[target]["order"]


def test_ui_format_widgets_in_comfyui_order() -> None:
    workflow, _ = workflow_for(params(clip_skip=2))
    widgets = {node["type"] + str(node["id"]): node.get("widgets_values") for node in workflow["nodes"]}
    assert widgets["KSampler3"] == [123456, "fixed", 12, 6.5, "dpmpp_2m", "karras", 1.0]
    assert widgets["EmptyLatentImage5"] == [64, 96, 1]
    assert widgets["CheckpointLoaderSimple4"] == ["tiny-sd.safetensors"]
    assert widgets["CLIPTextEncode6"] == ["a lighthouse at dusk, ünïcode ✓"]
    assert widgets["CLIPTextEncode7"] == ["blurry, text"]
    assert widgets["CLIPSetLastLayer10"] == [-2]
    assert widgets["VAEDecode8"] == []
    assert widgets["SaveImage9"] == ["cauldron"]


def test_plms_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="has no ComfyUI equivalent"):
        workflow_for(params(sampler="PLMS", schedule="Automatic"))


def test_eta_is_refused_not_dropped() -> None:
    with pytest.raises(ValueError, match=r"eta 0\.3 has no ComfyUI equivalent"):
        workflow_for(params(sampler="DDIM", schedule="Automatic", eta=0.3))


@pytest.mark.parametrize("changes", [{"loras": [{"name": "detail", "weight": 0.6}]}, {"vae": "other.safetensors"}])
def test_loras_and_vae_are_refused_not_dropped(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="LoRAs and VAE overrides are not written into ComfyUI workflows"):
        workflow_for(params(**changes))


def test_random_seed_takes_the_image_seed() -> None:
    _, prompt = workflow_for(params(seed=-1), seed=77)
    assert by_type(prompt, "KSampler")[0]["inputs"]["seed"] == 77
    with pytest.raises(ValueError, match="random seed"):
        workflow_for(params(seed=-1))


def test_both_formats_satisfy_the_comfyui_frontend_schema() -> None:
    # The fields ComfyUI's frontend validates a dropped workflow against (zComfyWorkflow 0.4, zComfyApiWorkflow).
    workflow, prompt = workflow_for(params(clip_skip=2))
    assert isinstance(workflow["last_node_id"], int) and isinstance(workflow["last_link_id"], int)
    assert isinstance(workflow["version"], float)
    for node in workflow["nodes"]:
        assert isinstance(node["id"], int) and isinstance(node["type"], str)
        assert len(node["pos"]) == 2 and len(node["size"]) == 2
        assert isinstance(node["flags"], dict) and isinstance(node["properties"], dict)
        assert isinstance(node["order"], int) and node["mode"] == 0
        assert all({"name", "type", "link"} <= entry.keys() for entry in node["inputs"])
        assert all({"name", "type", "links", "slot_index"} <= entry.keys() for entry in node["outputs"])
    for link in workflow["links"]:
        assert len(link) == 6 and all(isinstance(part, int) for part in link[:5]) and isinstance(link[5], str)
    for node in prompt.values():
        assert isinstance(node["_meta"]["title"], str) and isinstance(node["inputs"], dict)
