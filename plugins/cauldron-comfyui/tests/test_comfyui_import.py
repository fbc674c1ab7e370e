"""ComfyUI files to params: round trips through all three exports, a hand-written ComfyUI save, and refusals."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from cauldron_comfyui.importer import import_file
from cauldron_comfyui.mapping import SAMPLER_TO_COMFY
from cauldron_comfyui.plugin import workflow_for
from cauldron_comfyui.png_chunks import read_text_chunks, with_text_chunks
from comfyui_fixtures import params
from PIL import Image

from cauldrond.media.png import encode_png
from cauldrond.params import GenerationParams

DATA = Path(__file__).parent / "data"

VARIANTS = [
    params(),
    params(clip_skip=2, sampler="Euler a", schedule="Automatic", negative_prompt=""),
    params(model="sd-v1.5", sampler="UniPC", schedule="Exponential", width=512, height=768, seed=0),
    params(sampler="LCM", schedule="Automatic", steps=4, cfg_scale=1.0, seed=4294967295, clip_skip=12),
]


def as_json(document: Any) -> bytes:
    return json.dumps(document).encode("utf-8")


def png_with_workflow(values: dict[str, Any]) -> bytes:
    workflow, prompt = workflow_for(values)
    original = encode_png(Image.new("RGB", (8, 8), "red"), {"parameters": "a1111 text", "cauldron": "{}"})
    return with_text_chunks(original, {"prompt": json.dumps(prompt), "workflow": json.dumps(workflow)})


@pytest.mark.parametrize("values", VARIANTS)
def test_round_trip_api_ui_and_png(values: dict[str, Any]) -> None:
    expected = GenerationParams.model_validate(values).to_json_dict()
    workflow, prompt = workflow_for(values)
    assert import_file(as_json(prompt), "x.json") == [expected]
    assert import_file(as_json(workflow), "x.json") == [expected]
    assert import_file(png_with_workflow(values), "x.png") == [expected]


@pytest.mark.parametrize("sampler", sorted(SAMPLER_TO_COMFY))
def test_round_trip_of_every_mapped_sampler(sampler: str) -> None:
    values = params(sampler=sampler, schedule="Automatic")
    workflow, _ = workflow_for(values)
    assert import_file(as_json(workflow))[0]["sampler"] == sampler


def test_png_keeps_its_chunks_and_pixels() -> None:
    data = png_with_workflow(params())
    texts = read_text_chunks(data)
    assert texts["parameters"] == "a1111 text" and texts["cauldron"] == "{}"
    assert json.loads(texts["workflow"])["version"] == 0.4
    assert "class_type" in json.loads(texts["prompt"])["3"]
    with Image.open(io.BytesIO(data)) as image:
        assert image.getpixel((3, 3)) == (255, 0, 0)
        assert getattr(image, "text", {})["workflow"] == texts["workflow"]
    # Embedding again replaces ComfyUI's chunks instead of stacking a second copy.
    again = with_text_chunks(data, {"prompt": "{}"})
    assert again.count(b"tEXtprompt\x00") == 1 and read_text_chunks(again)["prompt"] == "{}"


def test_png_prefers_the_prompt_chunk_and_falls_back_to_workflow() -> None:
    workflow, _ = workflow_for(params(steps=5))
    _, other_prompt = workflow_for(params(steps=9))
    blank = encode_png(Image.new("RGB", (8, 8)), {})
    both = with_text_chunks(blank, {"workflow": json.dumps(workflow), "prompt": json.dumps(other_prompt)})
    assert import_file(both)[0]["steps"] == 9
    only_workflow = with_text_chunks(blank, {"workflow": json.dumps(workflow)})
    assert import_file(only_workflow)[0]["steps"] == 5


def test_hand_written_comfyui_default_graph_imports() -> None:
    content = (DATA / "comfyui_default_workflow.json").read_bytes()
    assert import_file(content, "comfyui_default_workflow.json") == [
        {
            "prompt": "beautiful scenery nature glass bottle landscape, purple galaxy bottle,",
            "negative_prompt": "text, watermark",
            "model": "v1-5-pruned-emaonly",
            "sampler": "Euler",
            "schedule": "Automatic",
            "steps": 20,
            "cfg_scale": 8.0,
            "seed": 3141592653,  # stored with "randomize": still the seed that made the image
            "width": 512,
            "height": 768,
            "clip_skip": 1,
            "eta": 0.0,
            "vae": "",
            "loras": [],
        }
    ]


def test_api_wrapped_in_a_prompt_request_and_two_outputs_of_one_sampler() -> None:
    _, prompt = workflow_for(params())
    prompt["20"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
    assert len(import_file(as_json({"prompt": prompt, "client_id": "x"}))) == 1


def test_two_chains_give_two_params() -> None:
    _, first = workflow_for(params(seed=1))
    _, second = workflow_for(params(seed=2, clip_skip=3))
    merged = {**first, **{str(int(key) + 100): renumber(node, 100) for key, node in second.items()}}
    assert [(p["seed"], p["clip_skip"]) for p in import_file(as_json(merged))] == [(1, 1), (2, 3)]


def renumber(node: Any, offset: int) -> Any:
    inputs = {
        name: [str(int(value[0]) + offset), value[1]] if isinstance(value, list) else value
        for name, value in node["inputs"].items()
    }
    return {**node, "inputs": inputs}


def with_lora_and_controlnet() -> dict[str, Any]:
    _, prompt = workflow_for(params())
    prompt["30"] = {
        "class_type": "LoraLoader",
        "inputs": {"model": ["4", 0], "clip": ["4", 1], "lora_name": "x.safetensors", "strength_model": 1.0},
    }
    prompt["3"]["inputs"]["model"] = ["30", 0]
    prompt["31"] = {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "canny.safetensors"}}
    prompt["32"] = {"class_type": "LoadImage", "inputs": {"image": "edges.png"}}
    prompt["33"] = {
        "class_type": "ControlNetApply",
        "inputs": {"conditioning": ["6", 0], "control_net": ["31", 0], "image": ["32", 0], "strength": 1.0},
    }
    prompt["3"]["inputs"]["positive"] = ["33", 0]
    return prompt


def test_lora_and_controlnet_are_named() -> None:
    with pytest.raises(ValueError, match="cannot map the ComfyUI node types") as caught:
        import_file(as_json(with_lora_and_controlnet()))
    for name in ("ControlNetApply", "ControlNetLoader", "LoadImage", "LoraLoader"):
        assert name in str(caught.value)


def test_img2img_is_refused() -> None:
    _, prompt = workflow_for(params())
    prompt["40"] = {"class_type": "LoadImage", "inputs": {"image": "in.png"}}
    prompt["41"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["40", 0], "vae": ["4", 2]}}
    prompt["3"]["inputs"]["latent_image"] = ["41", 0]
    prompt["3"]["inputs"]["denoise"] = 0.6
    with pytest.raises(ValueError, match="LoadImage, VAEEncode"):
        import_file(as_json(prompt))
    _, partial = workflow_for(params())
    partial["3"]["inputs"]["denoise"] = 0.6
    with pytest.raises(ValueError, match=r"denoise 0\.6"):
        import_file(as_json(partial))


def test_hires_fix_second_sampler_is_refused() -> None:
    _, prompt = workflow_for(params())
    prompt["50"] = {"class_type": "KSampler", "inputs": {**prompt["3"]["inputs"], "latent_image": ["3", 0]}}
    prompt["8"]["inputs"]["samples"] = ["50", 0]
    with pytest.raises(ValueError, match="takes 'latent_image' from KSampler 3"):
        import_file(as_json(prompt))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sampler_name": "dpm_adaptive"}, "sampler_name 'dpm_adaptive'"),
        ({"scheduler": "beta"}, "scheduler 'beta'"),
        ({"seed": 156680208700286}, "outside cauldron's range"),
        ({"steps": 5000}, "steps"),
        ({"seed": ["99", 0]}, "links to node 99, which it does not contain"),
        ({"seed": ["5", 0]}, "takes 'seed' from a EmptyLatentImage node"),
    ],
)
def test_unmappable_values_are_named(change: dict[str, Any], message: str) -> None:
    _, prompt = workflow_for(params())
    prompt["3"]["inputs"].update(change)
    with pytest.raises(ValueError, match=message):
        import_file(as_json(prompt))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01 not json", "neither a PNG nor ComfyUI workflow JSON"),
        (b"{truncated", "neither a PNG nor ComfyUI workflow JSON"),
        (b'{"hello": "world"}', "not a ComfyUI workflow"),
        (b"[1, 2, 3]", "not a ComfyUI workflow"),
        (b"{}", "not a ComfyUI workflow"),
        (b'{"nodes": [], "links": []}', "no SaveImage or PreviewImage"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "truncated PNG"),
        (b'{"nodes": [{"id": 1, "type": "SaveImage", "inputs": [7]}]}', "malformed ComfyUI workflow"),
        (b'{"1": {"class_type": "SaveImage", "inputs": [1]}}', "malformed ComfyUI workflow"),
        (b'{"nodes": [{"id": 1, "type": "KSampler", "widgets_values": 5}]}', "has widgets_values 5"),
    ],
)
def test_garbage_is_a_clear_error(content: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        import_file(content, "upload")


def test_seed_from_a_custom_node_is_named() -> None:
    _, prompt = workflow_for(params())
    prompt["60"] = {"class_type": "Seed (rgthree)", "inputs": {"seed": 5}}
    prompt["3"]["inputs"]["seed"] = ["60", 0]
    with pytest.raises(ValueError, match=r"node types Seed \(rgthree\)"):
        import_file(as_json(prompt))


def test_png_without_comfyui_chunks() -> None:
    with pytest.raises(ValueError, match="without ComfyUI's 'prompt' or 'workflow'"):
        import_file(encode_png(Image.new("RGB", (8, 8)), {"parameters": "x"}), "plain.png")


def ui_workflow(**changes: Any) -> dict[str, Any]:
    workflow, _ = workflow_for(params(**changes))
    return workflow


def node_of(workflow: dict[str, Any], class_type: str) -> dict[str, Any]:
    return next(node for node in workflow["nodes"] if node["type"] == class_type)


def test_ui_without_seed_control_widget_and_with_dict_widgets() -> None:
    workflow = ui_workflow()
    sampler = node_of(workflow, "KSampler")
    sampler["widgets_values"] = [sampler["widgets_values"][0], *sampler["widgets_values"][2:]]
    node_of(workflow, "EmptyLatentImage")["widgets_values"] = {"width": 64, "height": 96, "batch_size": 1}
    assert import_file(as_json(workflow)) == [params()]


def test_ui_schema_1_link_objects() -> None:
    workflow = ui_workflow()
    keys = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")
    workflow["links"] = [dict(zip(keys, link, strict=True)) for link in workflow["links"]]
    workflow["version"] = 1
    assert import_file(as_json(workflow)) == [params()]


def test_ui_muted_output_and_bypassed_lora_are_skipped() -> None:
    workflow = ui_workflow()
    (model_link,) = [link[0] for link in workflow["links"] if link[5] == "MODEL"]
    # A muted preview hanging off a LoRA, and a bypassed LoraLoader between the checkpoint and the sampler.
    workflow["nodes"].append(
        {"id": 40, "type": "PreviewImage", "mode": 2, "inputs": [{"name": "images", "type": "IMAGE", "link": 90}]}
    )
    workflow["nodes"].append(
        {
            "id": 41,
            "type": "LoraLoader",
            "mode": 4,
            "inputs": [{"name": "model", "type": "MODEL", "link": 91}, {"name": "clip", "type": "CLIP", "link": None}],
            "outputs": [
                {"name": "MODEL", "type": "MODEL", "links": [1]},
                {"name": "CLIP", "type": "CLIP", "links": []},
            ],
            "widgets_values": ["style.safetensors", 1.0, 1.0],
        }
    )
    workflow["links"] = [link for link in workflow["links"] if link[0] != model_link]
    workflow["links"] += [[model_link, 41, 0, 3, 0, "MODEL"], [91, 4, 0, 41, 0, "MODEL"], [90, 8, 0, 40, 0, "IMAGE"]]
    assert import_file(as_json(workflow)) == [params()]
    node_of(workflow, "LoraLoader")["mode"] = 0
    with pytest.raises(ValueError, match="node types LoraLoader"):
        import_file(as_json(workflow))


def test_ui_bad_widgets_are_named() -> None:
    workflow = ui_workflow()
    node_of(workflow, "SaveImage")["widgets_values"] = ["prefix", "a widget of a newer ComfyUI"]
    assert import_file(as_json(workflow)) == [params()]
    node_of(workflow, "KSampler")["widgets_values"] = [1, 2]
    with pytest.raises(ValueError, match=r"node 3 \(KSampler\) has widgets_values"):
        import_file(as_json(workflow))


def test_ui_muted_checkpoint_leaves_the_sampler_unconnected() -> None:
    workflow = ui_workflow()
    node_of(workflow, "CheckpointLoaderSimple")["mode"] = 2
    with pytest.raises(ValueError, match="has no 'model' input connected"):
        import_file(as_json(workflow))
